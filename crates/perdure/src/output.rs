//! Printing: aligned tables and key/value blocks, relative times, coloured statuses, payloads as
//! JSON, and protobuf messages in their proto3 JSON form.

use std::fmt::Write as _;
use std::io::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use perdure_sdk::history_json::message_to_json;
use perdure_sdk::proto::common::v1::{Payload, Payloads};
use perdure_sdk::proto::enums::v1::{EventType, WorkflowExecutionStatus};
use prost_wkt_types::Timestamp;

/// Writes to stdout; a closed pipe (`perdure ... | head`) ends the process quietly.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("Error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `print!` through [`emit`].
macro_rules! out {
    ($($t:tt)*) => { $crate::output::emit(&format!($($t)*)) };
}

/// `println!` through [`emit`].
macro_rules! outln {
    () => { $crate::output::emit("\n") };
    ($($t:tt)*) => { $crate::output::emit(&format!("{}\n", format_args!($($t)*))) };
}

pub(crate) use {out, outln};

/// A table cell: text, optionally coloured with an ANSI code.
pub struct Cell {
    text: String,
    color: Option<&'static str>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell { text, color: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell {
            text: text.to_string(),
            color: None,
        }
    }
}

impl Cell {
    /// A cell coloured with `color` (an ANSI SGR code such as `"32"`).
    pub fn colored(text: impl Into<String>, color: Option<&'static str>) -> Self {
        Cell {
            text: text.into(),
            color,
        }
    }
}

/// Renders rows under headers, columns padded to their widest cell, indented by two spaces.
pub fn table(headers: &[&str], rows: Vec<Vec<Cell>>, color: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.text.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<(&str, Option<&str>)>| {
        let n = cells.len();
        out.push_str("  ");
        for (i, (text, code)) in cells.into_iter().enumerate() {
            let pad = widths[i] - text.chars().count();
            match code {
                Some(code) if color => {
                    let _ = write!(out, "\x1b[{code}m{text}\x1b[0m");
                }
                _ => out.push_str(text),
            }
            if i + 1 < n {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&mut out, headers.iter().map(|h| (*h, None)).collect());
    for row in &rows {
        line(
            &mut out,
            row.iter().map(|c| (c.text.as_str(), c.color)).collect(),
        );
    }
    out
}

/// Renders `key  value` lines with the keys padded to the longest, indented by two spaces.
pub fn kv(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let _ = writeln!(out, "  {k:<w$}  {v}");
    }
    out
}

/// A timestamp as a `chrono` time.
pub fn time(ts: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32)
}

/// RFC 3339 to the second, e.g. `2026-01-02T03:04:05Z`.
pub fn rfc3339(ts: Option<&Timestamp>) -> String {
    ts.and_then(time)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// "now", "5 seconds ago", "2 minutes ago", "in 3 hours".
pub fn relative(ts: Option<&Timestamp>) -> String {
    let Some(t) = ts.and_then(time) else {
        return String::new();
    };
    relative_to(t, Utc::now())
}

fn relative_to(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    if n < 1 {
        return "now".into();
    }
    let (value, unit) = match n {
        0..60 => (n, "second"),
        60..3600 => (n / 60, "minute"),
        3600..86400 => (n / 3600, "hour"),
        86400..2_592_000 => (n / 86400, "day"),
        2_592_000..31_536_000 => (n / 2_592_000, "month"),
        _ => (n / 31_536_000, "year"),
    };
    let plural = if value == 1 { "" } else { "s" };
    if future {
        format!("in {value} {unit}{plural}")
    } else {
        format!("{value} {unit}{plural} ago")
    }
}

/// `SCREAMING_SNAKE` with `prefix` stripped, as PascalCase: `WORKFLOW_TASK_STARTED` →
/// `WorkflowTaskStarted`.
fn pascal(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_string() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

/// A workflow status as the `temporal` CLI's tables show it: `Running`, `ContinuedAsNew`...
pub fn status_name(status: i32) -> String {
    WorkflowExecutionStatus::try_from(status)
        .map(|s| pascal(s.as_str_name(), "WORKFLOW_EXECUTION_STATUS_"))
        .unwrap_or_else(|_| status.to_string())
}

/// The ANSI colour of a status.
pub fn status_color(status: i32) -> Option<&'static str> {
    use WorkflowExecutionStatus as S;
    match S::try_from(status).ok()? {
        S::Running => Some("34"),
        S::Completed => Some("32"),
        S::Failed | S::TimedOut => Some("31"),
        S::Canceled | S::Terminated => Some("33"),
        S::ContinuedAsNew => Some("35"),
        _ => None,
    }
}

/// A status cell, coloured when `color`.
pub fn status_cell(status: i32) -> Cell {
    Cell::colored(status_name(status), status_color(status))
}

/// `WorkflowExecutionStarted` for `EVENT_TYPE_WORKFLOW_EXECUTION_STARTED`.
pub fn event_type_name(t: i32) -> String {
    EventType::try_from(t)
        .map(|s| pascal(s.as_str_name(), "EVENT_TYPE_"))
        .unwrap_or_else(|_| t.to_string())
}

/// A payload as a JSON value: JSON payloads decoded, `binary/null` as `null`, anything else
/// described.
pub fn payload_value(p: &Payload) -> serde_json::Value {
    perdure_sdk::payload::from_payload::<serde_json::Value>(p).unwrap_or_else(|_| {
        serde_json::Value::String(format!(
            "<{} payload, {} bytes>",
            perdure_sdk::payload::encoding(p),
            p.data.len()
        ))
    })
}

/// Every payload of a list as JSON values.
pub fn payloads_values(p: Option<&Payloads>) -> Vec<serde_json::Value> {
    p.map(|p| p.payloads.iter().map(payload_value).collect())
        .unwrap_or_default()
}

/// A protobuf message in compact proto3 JSON, fields in declaration order.
/// Whole-number doubles are written `2`, not `2.0`, as Go's protojson (and so `temporal`, and
/// the SDK's `history_to_json`) writes them.
pub fn message_json<M: prost::Message>(type_name: &str, m: &M) -> anyhow::Result<String> {
    Ok(go_numbers(&message_to_json(type_name, m)?))
}

/// Drops the `.0` of whole-number floats outside strings in compact JSON.
fn go_numbers(compact: &str) -> String {
    let b = compact.as_bytes();
    let mut out = String::with_capacity(compact.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if c == b'.'
            && i > 0
            && b[i - 1].is_ascii_digit()
            && b.get(i + 1) == Some(&b'0')
            && !b
                .get(i + 2)
                .is_some_and(|n| n.is_ascii_digit() || *n == b'e' || *n == b'E')
        {
            i += 2;
            continue;
        }
        // Bytes are copied whole: multi-byte UTF-8 only occurs inside strings.
        let start = i;
        i += 1;
        while i < b.len() && (b[i] & 0xC0) == 0x80 {
            i += 1;
        }
        out.push_str(&compact[start..i]);
    }
    out
}

/// A compact JSON object from `(key, compact JSON value)` pairs, in order.
pub fn json_object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A JSON value as compact text.
pub fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

/// Prints compact JSON text pretty (`json`, two-space indent, key order kept) or as it is
/// (`jsonl`).
pub fn print_json_text(compact: &str, pretty_print: bool) -> anyhow::Result<()> {
    if pretty_print {
        outln!("{}", pretty(compact));
    } else {
        outln!("{compact}");
    }
    Ok(())
}

/// Prints a JSON value pretty (`json`) or on one line (`jsonl`).
pub fn print_json(v: &serde_json::Value, pretty_print: bool) -> anyhow::Result<()> {
    print_json_text(&v.to_string(), pretty_print)
}

/// Re-indents compact JSON with two spaces, keeping the key order (serde_json's `Value` would
/// sort the keys).
pub fn pretty(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = compact.chars().collect();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                if chars.get(i + 1) == Some(&close) {
                    out.push(c);
                    out.push(close);
                    i += 2;
                    continue;
                }
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = Utc::now();
        let ago = |s: i64| relative_to(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(0), "now");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(59), "59 seconds ago");
        assert_eq!(ago(120), "2 minutes ago");
        assert_eq!(ago(3600), "1 hour ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
        assert_eq!(ago(-300), "in 5 minutes");
    }

    #[test]
    fn tables_align_and_colour_only_when_asked() {
        let rows = vec![
            vec![Cell::colored("Running", Some("34")), "a-long-id".into()],
            vec![Cell::colored("Completed", Some("32")), "b".into()],
        ];
        let plain = table(&["Status", "WorkflowId"], rows, false);
        assert_eq!(
            plain,
            "  Status     WorkflowId\n  Running    a-long-id\n  Completed  b\n"
        );
        let rows = vec![vec![Cell::colored("Running", Some("34")), "x".into()]];
        let coloured = table(&["Status", "WorkflowId"], rows, true);
        assert!(
            coloured.contains("\x1b[34mRunning\x1b[0m  x"),
            "{coloured:?}"
        );
    }

    #[test]
    fn pretty_keeps_key_order() {
        let text = r#"{"z":1,"a":{"s":"x,{y}:\\\"","e":[],"o":{}},"l":[1,2]}"#;
        let want = "{\n  \"z\": 1,\n  \"a\": {\n    \"s\": \"x,{y}:\\\\\\\"\",\n    \"e\": [],\n    \"o\": {}\n  },\n  \"l\": [\n    1,\n    2\n  ]\n}";
        assert_eq!(pretty(text), want);
        let v: serde_json::Value = serde_json::from_str(&pretty(text)).unwrap();
        assert_eq!(v, serde_json::from_str::<serde_json::Value>(text).unwrap());
    }

    #[test]
    fn whole_floats_lose_their_point_zero() {
        assert_eq!(
            go_numbers(r#"{"a":2.0,"b":"x 2.0","c":[1.05,3.0],"d":1.0e5,"é":"2.0"}"#),
            r#"{"a":2,"b":"x 2.0","c":[1.05,3],"d":1.0e5,"é":"2.0"}"#
        );
    }

    #[test]
    fn names() {
        assert_eq!(status_name(1), "Running");
        assert_eq!(status_name(6), "ContinuedAsNew");
        assert_eq!(event_type_name(1), "WorkflowExecutionStarted");
    }
}
