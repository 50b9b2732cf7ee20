//! Proto3 JSON for the HTTP API, as Temporal's: camelCase names, enums by name, 64-bit integers
//! as strings, and **payload shorthand** (on by default): a payload encoded `json/plain` is its
//! JSON value, `binary/null` is `null`, `json/protobuf` is the object plus `_protoMessageType`,
//! and a `Payloads` whose payloads all have a shorthand is a bare array. Anything else keeps
//! the canonical `{"metadata": ..., "data": ...}` form, which input also accepts.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions,
};
use serde_json::{Map, Value};

const PAYLOADS: &str = "temporal.api.common.v1.Payloads";
const PAYLOAD: &str = "temporal.api.common.v1.Payload";
const MESSAGE_TYPE_KEY: &str = "_protoMessageType";

/// How a response is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub pretty: bool,
    pub no_shorthand: bool,
}

/// A request that cannot be turned into its message: the text says why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// Builds the request message from the JSON body, the path variables and the query string.
pub fn request(
    input: &MessageDescriptor,
    body: Option<(Option<&FieldDescriptor>, &[u8])>,
    vars: &[(&[FieldDescriptor], String)],
    query: &[(String, String)],
    style: Style,
) -> Result<DynamicMessage, BadRequest> {
    let mut root = Value::Object(Map::new());
    if let Some((field, bytes)) = body {
        let parsed: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(bytes).map_err(|e| BadRequest(e.to_string()))?
        };
        match field {
            None => {
                if !parsed.is_object() {
                    return Err(BadRequest(format!(
                        "the body must be a JSON object for {}",
                        input.full_name()
                    )));
                }
                root = parsed;
            }
            Some(f) => {
                root[f.json_name()] = parsed;
            }
        }
    }
    if !style.no_shorthand {
        from_shorthand(input, &mut root)?;
    }
    for (path, value) in vars {
        set_path(&mut root, path, value, false)?;
    }
    for (key, value) in query {
        if matches!(key.as_str(), "pretty" | "noPayloadShorthand") {
            continue;
        }
        // As Temporal's gateway: a query parameter that names no field is ignored.
        let Ok(path) = crate::routes::field_path(input, key) else {
            continue;
        };
        set_path(&mut root, &path, value, true)?;
    }
    DynamicMessage::deserialize_with_options(
        input.clone(),
        root,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|e| BadRequest(e.to_string()))
}

/// Puts a path or query value into the JSON tree, typed by the field's kind.
fn set_path(
    root: &mut Value,
    path: &[FieldDescriptor],
    raw: &str,
    append: bool,
) -> Result<(), BadRequest> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    let mut node = root;
    for f in parents {
        if !node.is_object() {
            return Err(BadRequest(format!("{} is not an object", f.name())));
        }
        node = node
            .as_object_mut()
            .expect("checked")
            .entry(f.json_name())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let value = scalar(last, raw)?;
    let Some(obj) = node.as_object_mut() else {
        return Err(BadRequest(format!("{} is not an object", last.name())));
    };
    if last.is_list() {
        let entry = obj
            .entry(last.json_name())
            .or_insert_with(|| Value::Array(Vec::new()));
        match entry {
            Value::Array(a) if append => a.push(value),
            other => *other = Value::Array(vec![value]),
        }
    } else {
        obj.insert(last.json_name().to_string(), value);
    }
    Ok(())
}

fn scalar(field: &FieldDescriptor, raw: &str) -> Result<Value, BadRequest> {
    Ok(match field.kind() {
        Kind::Bool => match raw {
            "true" | "1" | "" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => {
                return Err(BadRequest(format!(
                    "{}: {raw:?} is not a boolean",
                    field.name()
                )));
            }
        },
        Kind::Enum(e) => match raw.parse::<i32>() {
            Ok(n) => Value::from(n),
            Err(_) if e.get_value_by_name(raw).is_some() => Value::String(raw.into()),
            Err(_) => {
                return Err(BadRequest(format!(
                    "{}: {raw:?} is not a value of {}",
                    field.name(),
                    e.full_name()
                )));
            }
        },
        Kind::Float | Kind::Double => raw
            .parse::<f64>()
            .map(Value::from)
            .map_err(|_| BadRequest(format!("{}: {raw:?} is not a number", field.name())))?,
        Kind::Bytes => {
            // Tokens travel URL-safe or standard, padded or not; the message wants standard.
            let bytes = decode_base64(raw)
                .ok_or_else(|| BadRequest(format!("{}: {raw:?} is not base64", field.name())))?;
            Value::String(STANDARD.encode(bytes))
        }
        Kind::Message(m) if m.full_name().starts_with("google.protobuf.") => {
            Value::String(raw.into())
        }
        Kind::Message(m) => {
            return Err(BadRequest(format!(
                "{}: a {} cannot be given in the URL",
                field.name(),
                m.full_name()
            )));
        }
        // Integers and strings: proto3 JSON takes both as strings.
        _ => Value::String(raw.into()),
    })
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let url = s.contains(['-', '_']);
    let padded = s.len().is_multiple_of(4);
    match (url, padded) {
        (false, true) => STANDARD.decode(s).ok(),
        (false, false) => STANDARD_NO_PAD.decode(s).ok(),
        (true, true) => URL_SAFE.decode(s).ok(),
        (true, false) => URL_SAFE_NO_PAD.decode(s).ok(),
    }
}

/// The response message as JSON text.
pub fn response(message: &DynamicMessage, style: Style) -> Result<String, String> {
    let mut value = to_value(message)?;
    if !style.no_shorthand {
        to_shorthand(&message.descriptor(), &mut value);
    }
    let text = if style.pretty {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    };
    text.map_err(|e| e.to_string())
}

/// A message in canonical proto3 JSON.
pub fn to_value(message: &DynamicMessage) -> Result<Value, String> {
    message
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().skip_default_fields(true),
        )
        .map_err(|e| e.to_string())
}

/// Applies `f` to every sub-message of `desc` found in `value`, depth first.
fn walk(
    desc: &MessageDescriptor,
    value: &mut Value,
    f: &mut dyn FnMut(&MessageDescriptor, &mut Value),
) {
    if desc.full_name() == PAYLOADS || desc.full_name() == PAYLOAD {
        f(desc, value);
        return;
    }
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    for field in desc.fields() {
        let Some(child) = obj.get_mut(field.json_name()) else {
            continue;
        };
        let m = if field.is_map() {
            match field.kind() {
                Kind::Message(entry) => match entry.map_entry_value_field().kind() {
                    Kind::Message(m) => m,
                    _ => continue,
                },
                _ => continue,
            }
        } else {
            match field.kind() {
                Kind::Message(m) => m,
                _ => continue,
            }
        };
        if m.full_name().starts_with("google.protobuf.") {
            continue;
        }
        if field.is_map() {
            if let Some(map) = child.as_object_mut() {
                for v in map.values_mut() {
                    walk(&m, v, f);
                }
            }
        } else if field.is_list() {
            if let Some(items) = child.as_array_mut() {
                for v in items {
                    walk(&m, v, f);
                }
            }
        } else {
            walk(&m, child, f);
        }
    }
}

fn to_shorthand(desc: &MessageDescriptor, value: &mut Value) {
    walk(desc, value, &mut |d, v| {
        if d.full_name() == PAYLOAD {
            if let Some(s) = payload_shorthand(v) {
                *v = s;
            }
        } else {
            let items = v
                .get("payloads")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let short: Option<Vec<Value>> = items.iter().map(payload_shorthand).collect();
            if let Some(short) = short {
                *v = Value::Array(short);
            }
        }
    });
}

fn from_shorthand(desc: &MessageDescriptor, value: &mut Value) -> Result<(), BadRequest> {
    let mut error = None;
    walk(desc, value, &mut |d, v| {
        if d.full_name() == PAYLOAD {
            match payload_from_shorthand(v.take()) {
                Ok(p) => *v = p,
                Err(e) => error = Some(e),
            }
        } else {
            match v.take() {
                Value::Null => *v = Value::Object(Map::new()),
                Value::Array(items) => {
                    let mut payloads = Vec::with_capacity(items.len());
                    for item in items {
                        match payload_from_shorthand(item) {
                            Ok(p) => payloads.push(p),
                            Err(e) => error = Some(e),
                        }
                    }
                    *v = serde_json::json!({ "payloads": payloads });
                }
                other => *v = other,
            }
        }
    });
    error.map_or(Ok(()), Err)
}

fn metadata_text(meta: &Map<String, Value>, key: &str) -> Option<String> {
    let b = decode_base64(meta.get(key)?.as_str()?)?;
    String::from_utf8(b).ok()
}

/// The shorthand of one canonical payload, if it has one.
fn payload_shorthand(p: &Value) -> Option<Value> {
    let meta = p.get("metadata")?.as_object()?;
    let data = match p.get("data").and_then(Value::as_str) {
        Some(d) => decode_base64(d)?,
        None => Vec::new(),
    };
    match metadata_text(meta, "encoding")?.as_str() {
        "binary/null" => Some(Value::Null),
        "json/plain" if meta.len() == 1 => serde_json::from_slice(&data).ok(),
        "json/protobuf" if meta.len() == 2 => {
            let message_type = metadata_text(meta, "messageType")?;
            let mut obj: Map<String, Value> = serde_json::from_slice(&data).ok()?;
            obj.insert(MESSAGE_TYPE_KEY.into(), Value::String(message_type));
            Some(Value::Object(obj))
        }
        _ => None,
    }
}

/// One payload from its shorthand (or its canonical form, kept as is).
fn payload_from_shorthand(v: Value) -> Result<Value, BadRequest> {
    let b64 = |s: &str| Value::String(STANDARD.encode(s));
    match v {
        Value::Null => Ok(serde_json::json!({ "metadata": { "encoding": b64("binary/null") } })),
        Value::Object(mut obj) => {
            if is_canonical_payload(&obj) {
                return Ok(Value::Object(obj));
            }
            if let Some(t) = obj.remove(MESSAGE_TYPE_KEY) {
                let Value::String(t) = t else {
                    return Err(BadRequest(format!("{MESSAGE_TYPE_KEY} must be a string")));
                };
                let data = serde_json::to_vec(&obj).map_err(|e| BadRequest(e.to_string()))?;
                return Ok(serde_json::json!({
                    "metadata": { "encoding": b64("json/protobuf"), "messageType": b64(&t) },
                    "data": STANDARD.encode(data),
                }));
            }
            json_plain(&Value::Object(obj))
        }
        other => json_plain(&other),
    }
}

fn json_plain(v: &Value) -> Result<Value, BadRequest> {
    let data = serde_json::to_vec(v).map_err(|e| BadRequest(e.to_string()))?;
    Ok(serde_json::json!({
        "metadata": { "encoding": STANDARD.encode("json/plain") },
        "data": STANDARD.encode(data),
    }))
}

/// `{"metadata": {"encoding": <base64>, ...}, "data": <base64>}` (data optional for
/// `binary/null`): an object a user meant as a payload, not as a JSON value.
fn is_canonical_payload(obj: &Map<String, Value>) -> bool {
    let Some(Value::Object(meta)) = obj.get("metadata") else {
        return false;
    };
    if !meta.contains_key("encoding")
        || !meta
            .values()
            .all(|v| v.as_str().is_some_and(|s| decode_base64(s).is_some()))
    {
        return false;
    }
    match obj.get("data") {
        None => obj.len() == 1 && metadata_text(meta, "encoding").as_deref() == Some("binary/null"),
        Some(Value::String(d)) => obj.len() == 2 && decode_base64(d).is_some(),
        Some(_) => false,
    }
}
