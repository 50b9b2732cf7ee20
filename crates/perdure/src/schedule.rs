//! `perdure schedule ...`: create, describe, list, update, toggle, trigger, backfill and delete
//! schedules, with the `temporal schedule` commands' flags. The requests are built as the
//! `temporal` CLI (through the Go SDK) builds them: `--calendar` JSON becomes a cron string,
//! durations and the default task timeout are always sent, and `update` replaces the whole
//! schedule.

use std::time::Duration;

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use perdure_sdk::proto::common::v1::{Header, Memo, Payloads, SearchAttributes, WorkflowType};
use perdure_sdk::proto::enums::v1::{ScheduleOverlapPolicy, TaskQueueKind};
use perdure_sdk::proto::schedule::v1::{
    BackfillRequest, CalendarSpec, IntervalSpec, Range, Schedule, ScheduleAction,
    ScheduleListEntry, SchedulePatch, SchedulePolicies, ScheduleSpec, ScheduleState,
    StructuredCalendarSpec, TriggerImmediatelyRequest, schedule_action,
};
use perdure_sdk::proto::sdk::v1::UserMetadata;
use perdure_sdk::proto::taskqueue::v1::TaskQueue;
use perdure_sdk::proto::workflow::v1::NewWorkflowExecutionInfo;
use perdure_sdk::proto::workflowservice::v1 as ws;
use prost_wkt_types::Timestamp;

use crate::cli::{Ctx, InputArgs, Output, json_pairs, parse_duration, pdur};
use crate::output::{kv, message_json, payload_value, print_json, print_json_text, relative};
use crate::output::{out, outln, table};

/// `perdure schedule` subcommands.
#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule that starts workflow executions at the times of its spec.
    Create(CreateArgs),
    /// Show a schedule: spec, action, policies, state and recent and next actions.
    Describe(IdArgs),
    /// List the schedules of the namespace.
    List(ListArgs),
    /// Replace a schedule's spec, action, policies and state.
    Update(UpdateArgs),
    /// Pause or unpause a schedule.
    Toggle(ToggleArgs),
    /// Take the schedule's action once, now.
    Trigger(TriggerArgs),
    /// Take the actions of the times between two instants that already passed.
    Backfill(BackfillArgs),
    /// Delete a schedule (the workflows it started are not touched).
    Delete(IdArgs),
}

#[derive(Args)]
pub struct IdArgs {
    /// Schedule ID.
    #[arg(long, short = 's')]
    schedule_id: String,
}

/// When the schedule runs, and its policies and state: shared by `create` and `update`.
#[derive(Args)]
pub struct SpecArgs {
    /// A cron string, e.g. "30 12 * * Fri", "@daily" or "@every 2h" (repeatable).
    #[arg(long, value_name = "CRON")]
    cron: Vec<String>,
    /// An interval, e.g. 90m, or 60m/15m with a phase offset (repeatable).
    #[arg(long, value_name = "DURATION[/OFFSET]")]
    interval: Vec<String>,
    /// A calendar as JSON, e.g. {"dayOfWeek":"Fri","hour":"17","minute":"5"} (repeatable).
    #[arg(long, value_name = "JSON")]
    calendar: Vec<String>,
    /// No action before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    start_time: Option<DateTime<Utc>>,
    /// No action after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    end_time: Option<DateTime<Utc>>,
    /// Start each action up to this much later than its time, at random.
    #[arg(long, value_parser = parse_duration)]
    jitter: Option<Duration>,
    /// Interpret calendars and cron strings in this IANA time zone (e.g. Europe/Paris).
    #[arg(long, value_name = "TZ")]
    time_zone: Option<String>,
    /// When an action's workflow is still running: Skip, BufferOne, BufferAll, CancelOther,
    /// TerminateOther or AllowAll.
    #[arg(long, default_value = "Skip")]
    overlap_policy: String,
    /// How long after a time its action may still be taken, e.g. after the server was down
    /// (default: one year).
    #[arg(long, value_parser = parse_duration)]
    catchup_window: Option<Duration>,
    /// Pause the schedule when a workflow it started fails.
    #[arg(long)]
    pause_on_failure: bool,
    /// Create the schedule paused.
    #[arg(long)]
    paused: bool,
    /// Notes (e.g. why it is paused).
    #[arg(long)]
    notes: Option<String>,
    /// Take at most this many actions (0: no limit).
    #[arg(long, default_value_t = 0)]
    remaining_actions: i64,
}

/// The workflow the schedule starts.
#[derive(Args)]
pub struct ActionArgs {
    /// Workflow ID; each start appends its time to it (default: a new UUID).
    #[arg(long, short = 'w')]
    workflow_id: Option<String>,
    /// Workflow type name.
    #[arg(long = "type", visible_alias = "name")]
    workflow_type: String,
    /// Task queue.
    #[arg(long, short = 't')]
    task_queue: String,
    #[command(flatten)]
    input: InputArgs,
    /// Fail the execution (all runs) if it lasts longer than this.
    #[arg(long, value_parser = parse_duration)]
    execution_timeout: Option<Duration>,
    /// Fail a run if it lasts longer than this.
    #[arg(long, value_parser = parse_duration)]
    run_timeout: Option<Duration>,
    /// Fail a workflow task if it lasts longer than this.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    task_timeout: Duration,
    /// A memo field of the started workflows as KEY=VALUE, the value JSON (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    memo: Vec<String>,
    /// A search attribute of the started workflows as KEY=VALUE, the value JSON (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    search_attribute: Vec<String>,
    /// A one-line summary of the started workflows for people.
    #[arg(long)]
    static_summary: Option<String>,
    /// Longer details of the started workflows for people.
    #[arg(long)]
    static_details: Option<String>,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    id: IdArgs,
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    action: ActionArgs,
    /// A memo field of the schedule itself as KEY=VALUE, the value JSON (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    schedule_memo: Vec<String>,
    /// A search attribute of the schedule itself as KEY=VALUE, the value JSON (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    schedule_search_attribute: Vec<String>,
}

#[derive(Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    id: IdArgs,
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    action: ActionArgs,
}

#[derive(Args)]
pub struct ListArgs {
    /// Filter, e.g. "WorkflowType = 'report'" or "TemporalSchedulePaused = true".
    #[arg(long, short = 'q')]
    query: Option<String>,
    /// Show the spec and notes too.
    #[arg(long, short = 'l')]
    long: bool,
    /// Show everything: also the spec's bounds, jitter, time zone, memo and search attributes.
    #[arg(long)]
    really_long: bool,
}

#[derive(Args)]
pub struct ToggleArgs {
    #[command(flatten)]
    id: IdArgs,
    /// Pause the schedule.
    #[arg(long, conflicts_with = "unpause")]
    pause: bool,
    /// Unpause the schedule.
    #[arg(long)]
    unpause: bool,
    /// Why (kept as the schedule's notes).
    #[arg(long, default_value = "(no reason provided)")]
    reason: String,
}

#[derive(Args)]
pub struct TriggerArgs {
    #[command(flatten)]
    id: IdArgs,
    /// Skip, BufferOne, BufferAll, CancelOther, TerminateOther or AllowAll.
    #[arg(long, default_value = "Skip")]
    overlap_policy: String,
}

#[derive(Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    id: IdArgs,
    /// The first time to take (inclusive, RFC 3339).
    #[arg(long, value_parser = parse_time)]
    start_time: DateTime<Utc>,
    /// The end of the range (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    end_time: DateTime<Utc>,
    /// Skip, BufferOne, BufferAll, CancelOther, TerminateOther or AllowAll.
    #[arg(long, default_value = "Skip")]
    overlap_policy: String,
}

const RPC_TIMEOUT: Duration = Duration::from_secs(30);

fn req<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(RPC_TIMEOUT);
    r
}

/// Runs one `perdure schedule` command.
pub async fn run(ctx: Ctx, cmd: ScheduleCommand) -> anyhow::Result<()> {
    match cmd {
        ScheduleCommand::Create(a) => create(&ctx, a).await,
        ScheduleCommand::Describe(a) => describe(&ctx, a).await,
        ScheduleCommand::List(a) => list(&ctx, a).await,
        ScheduleCommand::Update(a) => update(&ctx, a).await,
        ScheduleCommand::Toggle(a) => toggle(&ctx, a).await,
        ScheduleCommand::Trigger(a) => trigger(&ctx, a).await,
        ScheduleCommand::Backfill(a) => backfill(&ctx, a).await,
        ScheduleCommand::Delete(a) => delete(&ctx, a).await,
    }
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (like 2026-01-02T03:04:05Z): {e}"))
}

fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// `BufferOne`, `buffer-one` or `SCHEDULE_OVERLAP_POLICY_BUFFER_ONE` → the policy.
fn overlap_policy(s: &str) -> anyhow::Result<ScheduleOverlapPolicy> {
    let wanted: String = s
        .trim_start_matches("SCHEDULE_OVERLAP_POLICY_")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    [
        ScheduleOverlapPolicy::Skip,
        ScheduleOverlapPolicy::BufferOne,
        ScheduleOverlapPolicy::BufferAll,
        ScheduleOverlapPolicy::CancelOther,
        ScheduleOverlapPolicy::TerminateOther,
        ScheduleOverlapPolicy::AllowAll,
    ]
    .into_iter()
    .find(|p| {
        let name: String = p
            .as_str_name()
            .trim_start_matches("SCHEDULE_OVERLAP_POLICY_")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        name.eq_ignore_ascii_case(&wanted)
    })
    .ok_or_else(|| {
        anyhow!(
            "invalid --overlap-policy {s:?}: use Skip, BufferOne, BufferAll, CancelOther, \
             TerminateOther or AllowAll"
        )
    })
}

/// `90m` or `60m/15m` (every 60 minutes, 15 minutes past the phase).
fn interval(s: &str) -> anyhow::Result<IntervalSpec> {
    let bad = |e: String| anyhow!("invalid --interval {s:?}: {e}");
    let (every, offset) = match s.split('/').collect::<Vec<_>>().as_slice() {
        [every] => (*every, None),
        [every, offset] => (*every, Some(*offset)),
        _ => {
            return Err(bad(
                "must be \"<duration>\" or \"<duration>/<duration>\"".into()
            ));
        }
    };
    let every = parse_duration(every).map_err(bad)?;
    let offset = offset
        .map(parse_duration)
        .transpose()
        .map_err(bad)?
        .unwrap_or_default();
    Ok(IntervalSpec {
        interval: Some(pdur(every)),
        phase: Some(pdur(offset)),
    })
}

/// A `--calendar` JSON object (CalendarSpec's fields, in camelCase or snake_case) as the
/// seven-field cron string (`second minute hour day-of-month month day-of-week year`) the
/// `temporal` CLI sends for it.
fn calendar_cron(json: &str) -> anyhow::Result<String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| anyhow!("invalid --calendar {json:?}: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("invalid --calendar {json:?}: not a JSON object"))?;
    const FIELDS: [(&str, &str, &str); 8] = [
        ("second", "second", "0"),
        ("minute", "minute", "0"),
        ("hour", "hour", "0"),
        ("dayOfMonth", "day_of_month", "*"),
        ("month", "month", "*"),
        ("dayOfWeek", "day_of_week", "*"),
        ("year", "year", "*"),
        ("comment", "comment", ""),
    ];
    for k in obj.keys() {
        if !FIELDS.iter().any(|(c, s, _)| k == c || k == s) {
            bail!("invalid --calendar {json:?}: unknown field {k:?}");
        }
    }
    let mut fields = Vec::new();
    let mut comment = String::new();
    for (camel, snake, default) in FIELDS {
        let value = match obj.get(camel).or_else(|| obj.get(snake)) {
            None => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => {
                bail!("invalid --calendar {json:?}: {camel} must be a string, not {other}")
            }
        };
        if camel == "comment" {
            comment = value;
            continue;
        }
        let value = if value.is_empty() {
            default.to_string()
        } else {
            value
        };
        if value.split_whitespace().count() != 1 {
            bail!("invalid --calendar {json:?}: {camel} {value:?} must be one word");
        }
        fields.push(value);
    }
    if !comment.is_empty() {
        fields.push("#".into());
        fields.push(comment);
    }
    Ok(fields.join(" "))
}

/// JSON values as `json/plain` payloads.
fn payload_map(
    pairs: &[String],
    flag: &str,
) -> anyhow::Result<std::collections::HashMap<String, perdure_sdk::proto::common::v1::Payload>> {
    json_pairs(pairs, flag)?
        .into_iter()
        .map(|(k, v)| Ok((k, perdure_sdk::payload::to_payload(&v)?)))
        .collect()
}

impl SpecArgs {
    fn spec(&self) -> anyhow::Result<ScheduleSpec> {
        let mut cron_string = self.cron.clone();
        for c in &self.calendar {
            cron_string.push(calendar_cron(c)?);
        }
        Ok(ScheduleSpec {
            cron_string,
            interval: self
                .interval
                .iter()
                .map(|i| interval(i))
                .collect::<anyhow::Result<_>>()?,
            start_time: self.start_time.map(ts),
            end_time: self.end_time.map(ts),
            jitter: Some(pdur(self.jitter.unwrap_or_default())),
            timezone_name: self.time_zone.clone().unwrap_or_default(),
            ..Default::default()
        })
    }

    fn policies(&self) -> anyhow::Result<SchedulePolicies> {
        Ok(SchedulePolicies {
            overlap_policy: overlap_policy(&self.overlap_policy)? as i32,
            catchup_window: Some(pdur(self.catchup_window.unwrap_or_default())),
            pause_on_failure: self.pause_on_failure,
            ..Default::default()
        })
    }

    fn state(&self) -> anyhow::Result<ScheduleState> {
        if self.remaining_actions < 0 {
            bail!("--remaining-actions must not be negative");
        }
        Ok(ScheduleState {
            notes: self.notes.clone().unwrap_or_default(),
            paused: self.paused,
            limited_actions: self.remaining_actions > 0,
            remaining_actions: self.remaining_actions,
        })
    }
}

impl ActionArgs {
    fn action(&self) -> anyhow::Result<ScheduleAction> {
        let inputs = self.input.payloads()?;
        let json =
            |s: &Option<String>| s.as_ref().map(perdure_sdk::payload::to_payload).transpose();
        let user_metadata = if self.static_summary.is_some() || self.static_details.is_some() {
            Some(UserMetadata {
                summary: json(&self.static_summary)?,
                details: json(&self.static_details)?,
            })
        } else {
            None
        };
        let memo = payload_map(&self.memo, "--memo")?;
        let sa = payload_map(&self.search_attribute, "--search-attribute")?;
        let w = NewWorkflowExecutionInfo {
            workflow_id: self
                .workflow_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            workflow_type: Some(WorkflowType {
                name: self.workflow_type.clone(),
            }),
            task_queue: Some(TaskQueue {
                name: self.task_queue.clone(),
                kind: TaskQueueKind::Normal as i32,
                ..Default::default()
            }),
            input: Some(Payloads { payloads: inputs }).filter(|p| !p.payloads.is_empty()),
            workflow_execution_timeout: Some(pdur(self.execution_timeout.unwrap_or_default())),
            workflow_run_timeout: Some(pdur(self.run_timeout.unwrap_or_default())),
            workflow_task_timeout: Some(pdur(self.task_timeout)),
            memo: Some(Memo { fields: memo }).filter(|m| !m.fields.is_empty()),
            search_attributes: Some(SearchAttributes { indexed_fields: sa })
                .filter(|s| !s.indexed_fields.is_empty()),
            header: Some(Header::default()),
            user_metadata,
            ..Default::default()
        };
        Ok(ScheduleAction {
            action: Some(schedule_action::Action::StartWorkflow(w)),
        })
    }
}

/// The schedule of `create` and `update`.
fn schedule(spec: &SpecArgs, action: &ActionArgs) -> anyhow::Result<Schedule> {
    Ok(Schedule {
        spec: Some(spec.spec()?),
        action: Some(action.action()?),
        policies: Some(spec.policies()?),
        state: Some(spec.state()?),
    })
}

/// A gRPC error about schedule `id` as one sentence.
fn status(ctx: &Ctx, s: tonic::Status, id: &str) -> anyhow::Error {
    let code = s.code();
    let e = ctx.status(s, None);
    if code == tonic::Code::NotFound && !e.to_string().starts_with("namespace") {
        return anyhow!("schedule {id:?} not found in namespace {:?}", ctx.namespace);
    }
    e
}

/// A one-line confirmation (table) or `{"message": ...}` (JSON).
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

async fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    let id = a.id.schedule_id;
    let memo = payload_map(&a.schedule_memo, "--schedule-memo")?;
    let sa = payload_map(&a.schedule_search_attribute, "--schedule-search-attribute")?;
    let r = ws::CreateScheduleRequest {
        namespace: ctx.namespace.clone(),
        schedule_id: id.clone(),
        schedule: Some(schedule(&a.spec, &a.action)?),
        initial_patch: None,
        identity: ctx.client.identity().to_string(),
        request_id: uuid::Uuid::new_v4().to_string(),
        memo: Some(Memo { fields: memo }).filter(|m| !m.fields.is_empty()),
        search_attributes: Some(SearchAttributes { indexed_fields: sa })
            .filter(|s| !s.indexed_fields.is_empty()),
    };
    ctx.client
        .workflow_service()
        .create_schedule(req(r))
        .await
        .map_err(|s| status(ctx, s, &id))?;
    done(ctx, "Schedule created")
}

async fn describe_raw(ctx: &Ctx, id: &str) -> anyhow::Result<ws::DescribeScheduleResponse> {
    let r = ws::DescribeScheduleRequest {
        namespace: ctx.namespace.clone(),
        schedule_id: id.to_string(),
    };
    Ok(ctx
        .client
        .workflow_service()
        .describe_schedule(req(r))
        .await
        .map_err(|s| status(ctx, s, id))?
        .into_inner())
}

async fn update(ctx: &Ctx, a: UpdateArgs) -> anyhow::Result<()> {
    let id = a.id.schedule_id;
    let new = schedule(&a.spec, &a.action)?;
    // As the SDKs do: replace what was described, not something changed in between.
    let current = describe_raw(ctx, &id).await?;
    let r = ws::UpdateScheduleRequest {
        namespace: ctx.namespace.clone(),
        schedule_id: id.clone(),
        schedule: Some(new),
        conflict_token: current.conflict_token,
        identity: ctx.client.identity().to_string(),
        request_id: uuid::Uuid::new_v4().to_string(),
        search_attributes: None,
        memo: None,
    };
    ctx.client
        .workflow_service()
        .update_schedule(req(r))
        .await
        .map_err(|s| status(ctx, s, &id))?;
    done(ctx, "Schedule updated")
}

async fn patch(ctx: &Ctx, id: &str, patch: SchedulePatch) -> anyhow::Result<()> {
    let r = ws::PatchScheduleRequest {
        namespace: ctx.namespace.clone(),
        schedule_id: id.to_string(),
        patch: Some(patch),
        identity: ctx.client.identity().to_string(),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    ctx.client
        .workflow_service()
        .patch_schedule(req(r))
        .await
        .map_err(|s| status(ctx, s, id))?;
    Ok(())
}

async fn toggle(ctx: &Ctx, a: ToggleArgs) -> anyhow::Result<()> {
    if a.pause == a.unpause {
        bail!("exactly one of --pause or --unpause is required");
    }
    let p = if a.pause {
        SchedulePatch {
            pause: a.reason,
            ..Default::default()
        }
    } else {
        SchedulePatch {
            unpause: a.reason,
            ..Default::default()
        }
    };
    patch(ctx, &a.id.schedule_id, p).await?;
    done(
        ctx,
        if a.pause {
            "Schedule paused"
        } else {
            "Schedule unpaused"
        },
    )
}

async fn trigger(ctx: &Ctx, a: TriggerArgs) -> anyhow::Result<()> {
    let p = SchedulePatch {
        trigger_immediately: Some(TriggerImmediatelyRequest {
            overlap_policy: overlap_policy(&a.overlap_policy)? as i32,
            scheduled_time: None,
        }),
        ..Default::default()
    };
    patch(ctx, &a.id.schedule_id, p).await?;
    done(ctx, "Trigger request sent")
}

async fn backfill(ctx: &Ctx, a: BackfillArgs) -> anyhow::Result<()> {
    let p = SchedulePatch {
        backfill_request: vec![BackfillRequest {
            start_time: Some(ts(a.start_time)),
            end_time: Some(ts(a.end_time)),
            overlap_policy: overlap_policy(&a.overlap_policy)? as i32,
        }],
        ..Default::default()
    };
    patch(ctx, &a.id.schedule_id, p).await?;
    done(ctx, "Backfill request sent")
}

async fn delete(ctx: &Ctx, a: IdArgs) -> anyhow::Result<()> {
    let r = ws::DeleteScheduleRequest {
        namespace: ctx.namespace.clone(),
        schedule_id: a.schedule_id.clone(),
        identity: ctx.client.identity().to_string(),
    };
    ctx.client
        .workflow_service()
        .delete_schedule(req(r))
        .await
        .map_err(|s| status(ctx, s, &a.schedule_id))?;
    done(ctx, "Schedule deleted")
}

/// A protobuf duration as `1d2h`, `10m`, `1m30s`, `500ms` or `0s`.
fn duration_text(d: Option<&prost_wkt_types::Duration>) -> String {
    let Some(d) = d else {
        return String::new();
    };
    let mut secs = d.seconds.max(0);
    let millis = d.nanos.max(0) / 1_000_000;
    let mut out = String::new();
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= n {
            out.push_str(&format!("{}{unit}", secs / n));
            secs %= n;
        }
    }
    if secs > 0 || (out.is_empty() && millis == 0) {
        out.push_str(&format!("{secs}s"));
    }
    if millis > 0 {
        out.push_str(&format!("{millis}ms"));
    }
    out
}

/// A time as RFC 3339 and how far it is from now.
fn when(t: Option<&Timestamp>) -> String {
    match t {
        Some(t) => format!(
            "{} ({})",
            crate::output::rfc3339(Some(t)),
            relative(Some(t))
        ),
        None => String::new(),
    }
}

/// Calendar ranges as `start-end/step` lists, as `temporal schedule describe` prints them.
fn ranges(rs: &[Range]) -> String {
    rs.iter()
        .map(|r| {
            let mut s = r.start.to_string();
            if r.end > r.start {
                s += &format!("-{}", r.end);
            }
            if r.step > 1 {
                s += &format!("/{}", r.step);
            }
            s
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn structured_calendar(c: &StructuredCalendarSpec) -> String {
    let mut parts = Vec::new();
    for (name, rs) in [
        ("second", &c.second),
        ("minute", &c.minute),
        ("hour", &c.hour),
        ("dayOfMonth", &c.day_of_month),
        ("month", &c.month),
        ("year", &c.year),
        ("dayOfWeek", &c.day_of_week),
    ] {
        if !rs.is_empty() {
            parts.push(format!("{name}={}", ranges(rs)));
        }
    }
    if !c.comment.is_empty() {
        parts.push(format!("# {}", c.comment));
    }
    format!("calendar {}", parts.join(" "))
}

fn calendar(c: &CalendarSpec) -> String {
    let mut parts = Vec::new();
    for (name, v) in [
        ("second", &c.second),
        ("minute", &c.minute),
        ("hour", &c.hour),
        ("dayOfMonth", &c.day_of_month),
        ("month", &c.month),
        ("year", &c.year),
        ("dayOfWeek", &c.day_of_week),
    ] {
        if !v.is_empty() {
            parts.push(format!("{name}={v}"));
        }
    }
    format!("calendar {}", parts.join(" "))
}

/// Every part of a spec's "when", one item each.
fn spec_items(spec: &ScheduleSpec) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(spec.structured_calendar.iter().map(structured_calendar));
    out.extend(spec.calendar.iter().map(calendar));
    out.extend(spec.cron_string.iter().map(|c| format!("cron {c:?}")));
    for i in &spec.interval {
        let mut s = format!("every {}", duration_text(i.interval.as_ref()));
        if i.phase
            .as_ref()
            .is_some_and(|p| p.seconds > 0 || p.nanos > 0)
        {
            s += &format!(" offset {}", duration_text(i.phase.as_ref()));
        }
        out.push(s);
    }
    out
}

fn skip_items(spec: &ScheduleSpec) -> Vec<String> {
    spec.exclude_structured_calendar
        .iter()
        .map(structured_calendar)
        .collect()
}

/// A memo's or search attributes' fields as one JSON object of their values.
fn fields_json(
    fields: Option<&std::collections::HashMap<String, perdure_sdk::proto::common::v1::Payload>>,
) -> String {
    let Some(fields) = fields.filter(|f| !f.is_empty()) else {
        return String::new();
    };
    let obj: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, p)| (k.clone(), payload_value(p)))
        .collect();
    serde_json::Value::Object(obj).to_string()
}

fn policy_name(p: i32) -> String {
    ScheduleOverlapPolicy::try_from(p)
        .ok()
        .filter(|p| *p != ScheduleOverlapPolicy::Unspecified)
        .map(|p| {
            p.as_str_name()
                .trim_start_matches("SCHEDULE_OVERLAP_POLICY_")
                .split('_')
                .map(|w| w[..1].to_string() + &w[1..].to_lowercase())
                .collect()
        })
        .unwrap_or_else(|| "Skip".into())
}

async fn describe(ctx: &Ctx, a: IdArgs) -> anyhow::Result<()> {
    let d = describe_raw(ctx, &a.schedule_id).await?;
    if ctx.output != Output::Table {
        let v = message_json(
            "temporal.api.workflowservice.v1.DescribeScheduleResponse",
            &d,
        )?;
        return print_json_text(&v, ctx.output == Output::Json);
    }
    let s = d.schedule.clone().unwrap_or_default();
    let info = d.info.clone().unwrap_or_default();
    let spec = s.spec.clone().unwrap_or_default();
    let policies = s.policies.unwrap_or_default();
    let state = s.state.clone().unwrap_or_default();
    let mut pairs = vec![("ScheduleId", a.schedule_id.clone())];
    if let Some(schedule_action::Action::StartWorkflow(w)) =
        s.action.as_ref().and_then(|a| a.action.as_ref())
    {
        pairs.push(("WorkflowId", w.workflow_id.clone()));
        pairs.push((
            "WorkflowType",
            w.workflow_type.clone().unwrap_or_default().name,
        ));
        pairs.push(("TaskQueue", w.task_queue.clone().unwrap_or_default().name));
        let input: Vec<serde_json::Value> = w
            .input
            .as_ref()
            .map(|p| p.payloads.iter().map(payload_value).collect())
            .unwrap_or_default();
        if !input.is_empty() {
            pairs.push(("Input", serde_json::Value::Array(input).to_string()));
        }
        for (k, d) in [
            ("ExecutionTimeout", &w.workflow_execution_timeout),
            ("RunTimeout", &w.workflow_run_timeout),
            ("TaskTimeout", &w.workflow_task_timeout),
        ] {
            if d.as_ref().is_some_and(|d| d.seconds > 0 || d.nanos > 0) {
                pairs.push((k, duration_text(d.as_ref())));
            }
        }
        let memo = fields_json(w.memo.as_ref().map(|m| &m.fields));
        if !memo.is_empty() {
            pairs.push(("WorkflowMemo", memo));
        }
        let sa = fields_json(w.search_attributes.as_ref().map(|s| &s.indexed_fields));
        if !sa.is_empty() {
            pairs.push(("WorkflowSearchAttributes", sa));
        }
    }
    pairs.push(("Spec", spec_items(&spec).join("; ")));
    let skip = skip_items(&spec);
    if !skip.is_empty() {
        pairs.push(("SkipSpec", skip.join("; ")));
    }
    if spec.start_time.is_some() {
        pairs.push(("StartAt", when(spec.start_time.as_ref())));
    }
    if spec.end_time.is_some() {
        pairs.push(("EndAt", when(spec.end_time.as_ref())));
    }
    if spec
        .jitter
        .as_ref()
        .is_some_and(|j| j.seconds > 0 || j.nanos > 0)
    {
        pairs.push(("Jitter", duration_text(spec.jitter.as_ref())));
    }
    if !spec.timezone_name.is_empty() {
        pairs.push(("TimeZoneName", spec.timezone_name.clone()));
    }
    pairs.push(("OverlapPolicy", policy_name(policies.overlap_policy)));
    pairs.push((
        "CatchupWindow",
        duration_text(policies.catchup_window.as_ref()),
    ));
    pairs.push(("PauseOnFailure", policies.pause_on_failure.to_string()));
    if !state.notes.is_empty() {
        pairs.push(("Notes", state.notes.clone()));
    }
    pairs.push(("Paused", state.paused.to_string()));
    if state.limited_actions {
        pairs.push(("RemainingActions", state.remaining_actions.to_string()));
    }
    pairs.push(("NextRunTime", when(info.future_action_times.first())));
    pairs.push((
        "LastRunTime",
        when(
            info.recent_actions
                .last()
                .and_then(|r| r.schedule_time.as_ref()),
        ),
    ));
    pairs.push((
        "RunningWorkflows",
        info.running_workflows
            .iter()
            .map(|w| w.workflow_id.clone())
            .collect::<Vec<_>>()
            .join(", "),
    ));
    pairs.push(("CreatedAt", when(info.create_time.as_ref())));
    if info.update_time.is_some() {
        pairs.push(("LastUpdateAt", when(info.update_time.as_ref())));
    }
    pairs.push(("Actions", info.action_count.to_string()));
    pairs.push((
        "MissedCatchupWindow",
        info.missed_catchup_window.to_string(),
    ));
    pairs.push(("SkippedOverlap", info.overlap_skipped.to_string()));
    let memo = fields_json(d.memo.as_ref().map(|m| &m.fields));
    if !memo.is_empty() {
        pairs.push(("Memo", memo));
    }
    let sa = fields_json(d.search_attributes.as_ref().map(|s| &s.indexed_fields));
    if !sa.is_empty() {
        pairs.push(("SearchAttributes", sa));
    }
    out!("{}", kv(&pairs));
    Ok(())
}

async fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    let mut all: Vec<ScheduleListEntry> = Vec::new();
    let mut token = Vec::new();
    loop {
        let r = ws::ListSchedulesRequest {
            namespace: ctx.namespace.clone(),
            maximum_page_size: 100,
            next_page_token: token,
            query: a.query.clone().unwrap_or_default(),
        };
        let resp = ctx
            .client
            .workflow_service()
            .list_schedules(req(r))
            .await
            .map_err(|s| ctx.status(s, None))?
            .into_inner();
        all.extend(resp.schedules);
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    const TYPE: &str = "temporal.api.schedule.v1.ScheduleListEntry";
    match ctx.output {
        Output::Json => {
            let vals = all
                .iter()
                .map(|e| message_json(TYPE, e))
                .collect::<anyhow::Result<Vec<_>>>()?;
            print_json_text(&format!("[{}]", vals.join(",")), true)
        }
        Output::Jsonl => {
            for e in &all {
                print_json_text(&message_json(TYPE, e)?, false)?;
            }
            Ok(())
        }
        Output::Table => {
            let long = a.long || a.really_long;
            let mut headers = vec!["ScheduleId", "WorkflowType"];
            if long {
                headers.extend(["Spec", "Notes"]);
            }
            headers.extend(["Paused", "NextRunTime", "LastRunTime"]);
            if a.really_long {
                headers.extend([
                    "SkipSpec",
                    "StartAt",
                    "EndAt",
                    "Jitter",
                    "TimeZoneName",
                    "Memo",
                    "SearchAttributes",
                ]);
            }
            let rows = all
                .iter()
                .map(|e| {
                    let info = e.info.clone().unwrap_or_default();
                    let spec = info.spec.clone().unwrap_or_default();
                    let mut row: Vec<crate::output::Cell> = vec![
                        e.schedule_id.clone().into(),
                        info.workflow_type.clone().unwrap_or_default().name.into(),
                    ];
                    if long {
                        row.push(spec_items(&spec).join("; ").into());
                        row.push(info.notes.clone().into());
                    }
                    row.push(info.paused.to_string().into());
                    row.push(relative(info.future_action_times.first()).into());
                    row.push(
                        relative(
                            info.recent_actions
                                .last()
                                .and_then(|r| r.schedule_time.as_ref()),
                        )
                        .into(),
                    );
                    if a.really_long {
                        row.push(skip_items(&spec).join("; ").into());
                        row.push(crate::output::rfc3339(spec.start_time.as_ref()).into());
                        row.push(crate::output::rfc3339(spec.end_time.as_ref()).into());
                        row.push(
                            spec.jitter
                                .as_ref()
                                .filter(|j| j.seconds > 0 || j.nanos > 0)
                                .map(|j| duration_text(Some(j)))
                                .unwrap_or_default()
                                .into(),
                        );
                        row.push(spec.timezone_name.clone().into());
                        row.push(fields_json(e.memo.as_ref().map(|m| &m.fields)).into());
                        row.push(
                            fields_json(e.search_attributes.as_ref().map(|s| &s.indexed_fields))
                                .into(),
                        );
                    }
                    row
                })
                .collect();
            out!("{}", table(&headers, rows, ctx.color));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendars_become_the_cron_strings_temporal_sends() {
        assert_eq!(
            calendar_cron(r#"{"dayOfWeek":"Fri","hour":"3","minute":"30"}"#).unwrap(),
            "0 30 3 * * Fri *"
        );
        assert_eq!(
            calendar_cron(r#"{"day_of_month":"1,15","comment":"twice a month"}"#).unwrap(),
            "0 0 0 1,15 * * * # twice a month"
        );
        assert!(calendar_cron(r#"{"hours":"3"}"#).is_err());
        assert!(calendar_cron(r#"{"hour":"3 4"}"#).is_err());
        assert!(calendar_cron(r#"{"hour":3}"#).is_err());
        assert!(calendar_cron("[1]").is_err());
    }

    #[test]
    fn intervals_and_policies() {
        let i = interval("10m/1m").unwrap();
        assert_eq!(i.interval.unwrap().seconds, 600);
        assert_eq!(i.phase.unwrap().seconds, 60);
        assert_eq!(interval("90m").unwrap().phase.unwrap().seconds, 0);
        assert!(interval("1m/2m/3m").is_err());
        assert!(interval("soon").is_err());
        for (s, p) in [
            ("Skip", ScheduleOverlapPolicy::Skip),
            ("BufferOne", ScheduleOverlapPolicy::BufferOne),
            ("allowall", ScheduleOverlapPolicy::AllowAll),
            (
                "SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER",
                ScheduleOverlapPolicy::TerminateOther,
            ),
        ] {
            assert_eq!(overlap_policy(s).unwrap(), p, "{s}");
        }
        assert!(overlap_policy("Sometimes").is_err());
        assert!(overlap_policy("Unspecified").is_err());
    }

    #[test]
    fn durations_read_like_go() {
        let d = |seconds, nanos| duration_text(Some(&prost_wkt_types::Duration { seconds, nanos }));
        assert_eq!(d(0, 0), "0s");
        assert_eq!(d(90, 0), "1m30s");
        assert_eq!(d(7200, 0), "2h");
        assert_eq!(d(86_400 + 3_600, 0), "1d1h");
        assert_eq!(d(0, 500_000_000), "500ms");
    }
}
