//! Read models derived from a run's state: `WorkflowExecutionInfo` for describe and list, the
//! visibility row kept in the same transaction, and search attribute typing.

use perdure_proto::api::common::v1::{Payload, SearchAttributes, WorkflowExecution};
use perdure_proto::api::enums::v1::{IndexedValueType, WorkflowExecutionStatus as Status};
use perdure_proto::api::workflow::v1::WorkflowExecutionInfo;
use prost::Message;

use crate::clock::convert::{opt_ts_nanos, pdur, ts_nanos};
use crate::state::ExecutionState;
use crate::store::VisibilityRow;

/// Name of an `IndexedValueType` as used in payload metadata (`Keyword`, `Int`, ...).
pub fn type_name(t: IndexedValueType) -> &'static str {
    match t {
        IndexedValueType::Text => "Text",
        IndexedValueType::Keyword => "Keyword",
        IndexedValueType::Int => "Int",
        IndexedValueType::Double => "Double",
        IndexedValueType::Bool => "Bool",
        IndexedValueType::Datetime => "Datetime",
        IndexedValueType::KeywordList => "KeywordList",
        IndexedValueType::Unspecified => "Unspecified",
    }
}

/// Parses a type name (case-insensitive) as found in payload metadata.
pub fn type_from_name(s: &str) -> Option<IndexedValueType> {
    Some(match s.to_ascii_lowercase().as_str() {
        "text" => IndexedValueType::Text,
        "keyword" => IndexedValueType::Keyword,
        "int" => IndexedValueType::Int,
        "double" => IndexedValueType::Double,
        "bool" => IndexedValueType::Bool,
        "datetime" => IndexedValueType::Datetime,
        "keywordlist" => IndexedValueType::KeywordList,
        _ => return None,
    })
}

/// The query crate's type for an `IndexedValueType`.
pub fn query_type(t: IndexedValueType) -> perdure_query::SaType {
    use perdure_query::SaType as S;
    match t {
        IndexedValueType::Text => S::Text,
        IndexedValueType::Int => S::Int,
        IndexedValueType::Double => S::Double,
        IndexedValueType::Bool => S::Bool,
        IndexedValueType::Datetime => S::Datetime,
        IndexedValueType::KeywordList => S::KeywordList,
        _ => S::Keyword,
    }
}

/// The `IndexedValueType` for a query crate type.
pub fn indexed_type(t: perdure_query::SaType) -> IndexedValueType {
    use perdure_query::SaType as S;
    match t {
        S::Text => IndexedValueType::Text,
        S::Int => IndexedValueType::Int,
        S::Double => IndexedValueType::Double,
        S::Bool => IndexedValueType::Bool,
        S::Datetime => IndexedValueType::Datetime,
        S::KeywordList => IndexedValueType::KeywordList,
        S::Keyword => IndexedValueType::Keyword,
    }
}

/// Checks each search attribute's value against its registered type and stamps the `type`
/// metadata the SDKs need. `lookup` resolves registered names.
pub fn type_search_attributes(
    sa: &mut SearchAttributes,
    namespace: &str,
    lookup: &dyn Fn(&str) -> Option<IndexedValueType>,
) -> Result<(), String> {
    for (k, v) in sa.indexed_fields.iter_mut() {
        let Some(t) = lookup(k) else {
            return Err(format!(
                "Namespace {namespace} has no mapping defined for search attribute {k}"
            ));
        };
        if v.data.is_empty() || v.data == b"null" {
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&v.data).map_err(|_| {
            format!(
                "invalid value for search attribute {k} of type {}",
                type_name(t)
            )
        })?;
        let ok = match t {
            IndexedValueType::Int => value.is_i64() || value.is_u64(),
            IndexedValueType::Double => value.is_number(),
            IndexedValueType::Bool => value.is_boolean(),
            IndexedValueType::Datetime => value.as_str().is_some_and(|s| parse_time(s).is_some()),
            IndexedValueType::KeywordList => {
                value.is_string()
                    || value
                        .as_array()
                        .is_some_and(|a| a.iter().all(|x| x.is_string()))
            }
            _ => value.is_string(),
        };
        if !ok {
            return Err(format!(
                "invalid value for search attribute {k} of type {}: {}",
                type_name(t),
                String::from_utf8_lossy(&v.data)
            ));
        }
        v.metadata
            .insert("type".into(), type_name(t).as_bytes().to_vec());
        v.metadata
            .entry("encoding".into())
            .or_insert_with(|| b"json/plain".to_vec());
    }
    Ok(())
}

fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
}

/// The JSON object stored in `visibility.search_attributes` (see `perdure-query`).
pub fn search_attributes_json(sa: Option<&SearchAttributes>) -> String {
    let mut obj = serde_json::Map::new();
    if let Some(sa) = sa {
        for (k, p) in &sa.indexed_fields {
            if let Some(v) = json_value(p) {
                obj.insert(k.clone(), v);
            }
        }
    }
    serde_json::Value::Object(obj).to_string()
}

fn json_value(p: &Payload) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&p.data).ok()?;
    let t = p
        .metadata
        .get("type")
        .and_then(|t| type_from_name(&String::from_utf8_lossy(t)));
    Some(match (t, v) {
        (Some(IndexedValueType::Datetime), serde_json::Value::String(s)) => {
            serde_json::Value::from(parse_time(&s)?)
        }
        (Some(IndexedValueType::KeywordList), serde_json::Value::String(s)) => {
            serde_json::Value::Array(vec![serde_json::Value::String(s)])
        }
        (_, v) => v,
    })
}

/// The `WorkflowExecutionInfo` of a run.
pub fn execution_info(state: &ExecutionState) -> WorkflowExecutionInfo {
    let closed = state.status != Status::Running as i32;
    let duration = match (&state.close_time, &state.execution_time) {
        (Some(c), Some(e)) if closed => {
            let n = (ts_nanos(c) - ts_nanos(e)).max(0);
            Some(pdur(std::time::Duration::from_nanos(n as u64)))
        }
        _ => None,
    };
    WorkflowExecutionInfo {
        execution: Some(WorkflowExecution {
            workflow_id: state.workflow_id.clone(),
            run_id: state.run_id.clone(),
        }),
        r#type: Some(perdure_proto::api::common::v1::WorkflowType {
            name: state.workflow_type.clone(),
        }),
        start_time: state.start_time,
        close_time: state.close_time,
        status: state.status,
        history_length: state.next_event_id - 1,
        parent_namespace_id: state
            .parent
            .as_ref()
            .map(|p| p.namespace_id.clone())
            .unwrap_or_default(),
        parent_execution: state.parent.as_ref().map(|p| WorkflowExecution {
            workflow_id: p.workflow_id.clone(),
            run_id: p.run_id.clone(),
        }),
        execution_time: state.execution_time,
        memo: Some(state.memo.clone().unwrap_or_default()),
        search_attributes: Some(state.search_attributes.clone().unwrap_or_default()),
        task_queue: state.task_queue.clone(),
        state_transition_count: state.state_transition_count,
        history_size_bytes: state.history_size_bytes,
        execution_duration: duration,
        root_execution: Some(WorkflowExecution {
            workflow_id: state.root_workflow_id.clone(),
            run_id: state.root_run_id.clone(),
        }),
        first_run_id: state.first_execution_run_id.clone(),
        ..Default::default()
    }
}

/// The visibility row of a run.
pub fn visibility_row(state: &ExecutionState) -> VisibilityRow {
    let mut info = execution_info(state);
    let running = state.status == Status::Running as i32;
    if running {
        // As Temporal's visibility: a running workflow's list entry has no history length,
        // size or transition count (DescribeWorkflowExecution has them); they are recorded
        // when it closes. So the entry does not change with every transition.
        info.history_length = 0;
        info.history_size_bytes = 0;
        info.state_transition_count = 0;
    }
    VisibilityRow {
        namespace_id: state.namespace_id.clone(),
        run_id: state.run_id.clone(),
        workflow_id: state.workflow_id.clone(),
        workflow_type: state.workflow_type.clone(),
        task_queue: state.task_queue.clone(),
        status: state.status,
        start_time: opt_ts_nanos(&state.start_time),
        execution_time: opt_ts_nanos(&state.execution_time),
        close_time: state.close_time.as_ref().map(ts_nanos),
        sort_key: crate::store::visibility_sort_key(
            opt_ts_nanos(&state.start_time),
            state.close_time.as_ref().map(ts_nanos),
        ),
        execution_duration: info
            .execution_duration
            .as_ref()
            .map(|d| d.seconds * 1_000_000_000 + d.nanos as i64),
        history_length: info.history_length,
        history_size_bytes: info.history_size_bytes,
        state_transition_count: info.state_transition_count,
        parent_workflow_id: state.parent.as_ref().map(|p| p.workflow_id.clone()),
        root_workflow_id: Some(state.root_workflow_id.clone()),
        search_attributes: search_attributes_json(state.search_attributes.as_ref()),
        info: info.encode_to_vec(),
    }
}

/// What the activity operations add to a pending activity's describe entry: its current options
/// and, while paused, `paused`, who paused it and when, state PAUSED (no attempt running) or
/// PAUSE_REQUESTED (an attempt still running), and no next attempt time.
pub fn add_activity_ops_info(
    a: &crate::state::ActivityState,
    info: &mut perdure_proto::api::workflow::v1::PendingActivityInfo,
) {
    use perdure_proto::api::enums::v1::PendingActivityState as S;
    use perdure_proto::api::workflow::v1::pending_activity_info::{PauseInfo, pause_info};
    info.activity_options = Some(crate::mutable::activity_options(a));
    if !a.paused {
        return;
    }
    info.paused = true;
    if info.state == S::Scheduled as i32 {
        info.state = S::Paused as i32;
    } else if info.state == S::Started as i32 {
        info.state = S::PauseRequested as i32;
    }
    info.next_attempt_schedule_time = None;
    info.current_retry_interval = None;
    info.pause_info = Some(PauseInfo {
        pause_time: a.pause_time,
        paused_by: Some(pause_info::PausedBy::Manual(pause_info::Manual {
            identity: a.pause_identity.clone(),
            reason: a.pause_reason.clone(),
        })),
    });
}
