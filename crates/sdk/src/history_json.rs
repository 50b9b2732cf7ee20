//! Workflow histories in the proto3 JSON mapping, as `temporal workflow show --output json` prints
//! them: camelCase field names, enum values by name (`"EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"`),
//! 64-bit integers as strings, bytes in base64, durations like `"10s"`, RFC 3339 timestamps.
//!
//! The mapping is not written by hand: it is driven by the protobuf descriptor set that
//! `temporalio-protos` publishes (copied in by `build.rs`) through `prost-reflect`, so every message
//! and field of the Temporal API is covered. Reading also accepts the older form whose enum values
//! are PascalCase with or without the enum's prefix (`"WorkflowExecutionStarted"`,
//! `"TaskQueueKindNormal"`, `"Normal"`), as the official SDKs do, and ignores fields this SDK's
//! protos do not know (a history from a newer server).

use std::io;
use std::sync::LazyLock;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, EnumDescriptor, FieldDescriptor, Kind,
    MessageDescriptor, SerializeOptions,
};
use serde_json::Value;
use serde_json::ser::{Formatter, PrettyFormatter};
use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::history::v1::{History, HistoryEvent};

const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/temporal_descriptors.bin"));

const HISTORY: &str = "temporal.api.history.v1.History";
const HISTORY_EVENT: &str = "temporal.api.history.v1.HistoryEvent";

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()));

/// Why a history could not be read from or written to JSON.
#[derive(Debug, thiserror::Error)]
pub enum HistoryJsonError {
    /// The text is not JSON at all.
    #[error("the history is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// The JSON is not a history (wrong shape, wrong value types, unknown event type...).
    #[error("the JSON is not a Temporal history: {0}")]
    Invalid(String),
    /// The history could not be encoded as JSON.
    #[error("the history could not be encoded as JSON: {0}")]
    Encode(String),
    /// The descriptor set built into the SDK is unusable (a build problem, not an input problem).
    #[error("the Temporal descriptor set built into the SDK is unusable: {0}")]
    Descriptors(String),
}

fn message(name: &str) -> Result<MessageDescriptor, HistoryJsonError> {
    let pool = POOL
        .as_ref()
        .map_err(|e| HistoryJsonError::Descriptors(e.clone()))?;
    pool.get_message_by_name(name)
        .ok_or_else(|| HistoryJsonError::Descriptors(format!("{name} is missing")))
}

/// Reads a history from its JSON form: an object with an `events` array (what `temporal workflow
/// show --output json` and `perdure workflow show -o json` print), or a bare array of events.
pub fn history_from_json(json: &str) -> Result<History, HistoryJsonError> {
    let value: Value = serde_json::from_str(json).map_err(HistoryJsonError::Syntax)?;
    let events = match value {
        Value::Array(events) => events,
        Value::Object(mut o) => match o.remove("events") {
            Some(Value::Array(events)) => events,
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                return Err(HistoryJsonError::Invalid(format!(
                    "\"events\" must be an array, not {}",
                    kind_of(&other)
                )));
            }
        },
        other => {
            return Err(HistoryJsonError::Invalid(format!(
                "expected an object with an \"events\" array, not {}",
                kind_of(&other)
            )));
        }
    };
    let desc = message(HISTORY_EVENT)?;
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let mut out = History::default();
    for (i, mut event) in events.into_iter().enumerate() {
        let at = match event_id_of(&event) {
            Some(id) => format!("event {id} (index {i})"),
            None => format!("event at index {i}"),
        };
        if !event.is_object() {
            return Err(HistoryJsonError::Invalid(format!(
                "{} is {}, not an object",
                at,
                kind_of(&event)
            )));
        }
        normalise_message(&mut event, &desc);
        let raw_type = event.get("eventType").cloned();
        let dynamic = DynamicMessage::deserialize_with_options(desc.clone(), &event, &options)
            .map_err(|e| HistoryJsonError::Invalid(format!("{}: {e}", at)))?;
        let decoded = HistoryEvent::decode(dynamic.encode_to_vec().as_slice())
            .map_err(|e| HistoryJsonError::Invalid(format!("{}: {e}", at)))?;
        if EventType::try_from(decoded.event_type).unwrap_or(EventType::Unspecified)
            == EventType::Unspecified
        {
            return Err(HistoryJsonError::Invalid(format!(
                "{} has no known event type (eventType: {})",
                at,
                raw_type.map_or("missing".into(), |t| t.to_string())
            )));
        }
        out.events.push(decoded);
    }
    Ok(out)
}

/// Writes a history as pretty-printed proto3 JSON, the form `temporal workflow show --output json`
/// prints and [`history_from_json`] (and Temporal's tooling and SDK replayers) read back.
pub fn history_to_json(history: &History) -> Result<String, HistoryJsonError> {
    let dynamic = DynamicMessage::decode(message(HISTORY)?, history.encode_to_vec().as_slice())
        .map_err(|e| HistoryJsonError::Encode(e.to_string()))?;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        Pretty(PrettyFormatter::with_indent(b"  ")),
    );
    dynamic
        .serialize_with_options(&mut ser, &SerializeOptions::new())
        .map_err(|e| HistoryJsonError::Encode(e.to_string()))?;
    String::from_utf8(out).map_err(|e| HistoryJsonError::Encode(e.to_string()))
}

/// Any Temporal message (`type_name` is its full proto name) as compact proto3 JSON, e.g. for
/// `json/protobuf` payloads.
pub fn message_to_json<M: Message>(type_name: &str, m: &M) -> Result<String, HistoryJsonError> {
    let dynamic = DynamicMessage::decode(message(type_name)?, m.encode_to_vec().as_slice())
        .map_err(|e| HistoryJsonError::Encode(e.to_string()))?;
    serde_json::to_string(&dynamic).map_err(|e| HistoryJsonError::Encode(e.to_string()))
}

/// Pretty-printed JSON whose whole-number doubles are written `2`, not `2.0`, as Go's protojson
/// (and so Temporal's CLI) writes them.
struct Pretty<'a>(PrettyFormatter<'a>);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $t:ty),*);)*) => {$(
        fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W $(, $arg: $t)*) -> io::Result<()> {
            self.0.$name(w $(, $arg)*)
        }
    )*};
}

impl Formatter for Pretty<'_> {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        begin_object_value();
        end_object_value();
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            write!(w, "{}", v as i64)
        } else {
            self.0.write_f64(w, v)
        }
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f32) -> io::Result<()> {
        if v.fract() == 0.0 && v.abs() < 1e7 {
            write!(w, "{}", v as i64)
        } else {
            self.0.write_f32(w, v)
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn event_id_of(event: &Value) -> Option<String> {
    match event.get("eventId")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Rewrites enum values written in the older PascalCase form to their proto names, guided by the
/// descriptors (only fields whose type is an enum are touched).
fn normalise_message(v: &mut Value, desc: &MessageDescriptor) {
    // Well-known types (Timestamp, Duration, Struct, ...) have JSON forms of their own.
    if desc.full_name().starts_with("google.protobuf.") {
        return;
    }
    let Value::Object(fields) = v else {
        return;
    };
    for (key, value) in fields.iter_mut() {
        if let Some(field) = desc
            .get_field_by_json_name(key)
            .or_else(|| desc.get_field_by_name(key))
        {
            normalise_field(value, &field);
        }
    }
}

fn normalise_field(v: &mut Value, field: &FieldDescriptor) {
    if field.is_map() {
        if let (Kind::Message(entry), Value::Object(m)) = (field.kind(), v) {
            let kind = entry.map_entry_value_field().kind();
            for x in m.values_mut() {
                normalise_single(x, &kind);
            }
        }
    } else if field.is_list() {
        if let Value::Array(a) = v {
            let kind = field.kind();
            for x in a {
                normalise_single(x, &kind);
            }
        }
    } else {
        normalise_single(v, &field.kind());
    }
}

fn normalise_single(v: &mut Value, kind: &Kind) {
    match kind {
        Kind::Message(m) => normalise_message(v, m),
        Kind::Enum(e) => {
            if let Value::String(s) = v
                && e.get_value_by_name(s).is_none()
                && let Some(name) = enum_value_name(e, s)
            {
                *s = name;
            }
        }
        _ => {}
    }
}

/// The proto name of an enum value written as `WorkflowExecutionStarted` (the prefix left out) or
/// `TaskQueueKindNormal` (the prefix kept).
fn enum_value_name(e: &EnumDescriptor, s: &str) -> Option<String> {
    let constant = constant_case(s);
    let prefixed = format!("{}_{constant}", constant_case(e.name()));
    [constant, prefixed]
        .into_iter()
        .find(|c| e.get_value_by_name(c).is_some())
}

/// `WorkflowExecutionStarted` -> `WORKFLOW_EXECUTION_STARTED`.
fn constant_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev: Option<char> = None;
    for c in s.chars() {
        if c.is_ascii_uppercase()
            && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
        prev = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_case_of_pascal_names() {
        assert_eq!(
            constant_case("WorkflowExecutionStarted"),
            "WORKFLOW_EXECUTION_STARTED"
        );
        assert_eq!(
            constant_case("TaskQueueKindNormal"),
            "TASK_QUEUE_KIND_NORMAL"
        );
        assert_eq!(constant_case("NORMAL"), "NORMAL");
    }

    #[test]
    fn enum_values_in_every_form() {
        let e = POOL
            .as_ref()
            .unwrap()
            .get_enum_by_name("temporal.api.enums.v1.TaskQueueKind")
            .unwrap();
        for s in ["TaskQueueKindNormal", "Normal", "NORMAL"] {
            assert_eq!(
                enum_value_name(&e, s).as_deref(),
                Some("TASK_QUEUE_KIND_NORMAL"),
                "{s}"
            );
        }
        assert_eq!(enum_value_name(&e, "Abnormal"), None);
    }
}
