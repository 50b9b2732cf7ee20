//! The HTTP API's route table, read at start-up from the `google.api.http` annotations of the
//! Temporal descriptor set (`WorkflowService` and `OperatorService`), never written by hand.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, MessageDescriptor, ServiceDescriptor, Value,
};

const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/temporal_descriptors.bin"));

/// The services whose annotated RPCs the HTTP API serves.
const SERVICES: &[&str] = &[
    "temporal.api.workflowservice.v1.WorkflowService",
    "temporal.api.operatorservice.v1.OperatorService",
];

/// The Temporal descriptor set (messages, services and their annotations).
pub fn pool() -> &'static DescriptorPool {
    static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
        DescriptorPool::decode(DESCRIPTORS)
            .expect("the descriptor set of temporalio-protos is built into this binary")
    });
    &POOL
}

/// One segment of a path template.
#[derive(Debug, Clone)]
pub enum Segment {
    Literal(String),
    /// `{a.b}` or `{a.b=*}`: one path segment into the field at that path.
    Var(Vec<FieldDescriptor>),
    /// `{a.b=**}`: the rest of the path.
    Rest(Vec<FieldDescriptor>),
}

/// Where the HTTP body goes in the request message.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    /// `body: "*"`: the whole message (minus path variables).
    All,
    /// `body: "field"`: that one field.
    Field(FieldDescriptor),
}

/// One HTTP binding of one RPC.
#[derive(Debug, Clone)]
pub struct Route {
    pub verb: http::Method,
    pub template: String,
    pub segments: Vec<Segment>,
    pub body: Body,
    /// `/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution`
    pub grpc_path: String,
    pub rpc: String,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
}

impl Route {
    fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }
}

/// A bound request: the route and the values of its path variables.
pub struct Matched<'a> {
    pub route: &'a Route,
    pub vars: Vec<(&'a [FieldDescriptor], String)>,
}

/// Every HTTP binding, grouped by verb.
pub struct Routes {
    by_verb: HashMap<http::Method, Vec<Route>>,
    /// Templates that could not be read (a template syntax this table does not know).
    pub skipped: Vec<String>,
}

impl Routes {
    /// Reads every binding of [`SERVICES`] from the descriptor set.
    pub fn load() -> Routes {
        let pool = pool();
        let mut routes = Routes {
            by_verb: HashMap::new(),
            skipped: Vec::new(),
        };
        let Some(http_ext) = pool.get_extension_by_name("google.api.http") else {
            routes
                .skipped
                .push("google.api.http is not in the descriptor set".into());
            return routes;
        };
        for name in SERVICES {
            let Some(service) = pool.get_service_by_name(name) else {
                routes.skipped.push(format!("{name} is missing"));
                continue;
            };
            routes.add_service(&service, &http_ext);
        }
        for list in routes.by_verb.values_mut() {
            // More literal segments first: `/workflows/{id}/history` beats `/workflows/{id}/{x}`.
            list.sort_by_key(|r| std::cmp::Reverse(r.literals()));
        }
        routes
    }

    fn add_service(
        &mut self,
        service: &ServiceDescriptor,
        http_ext: &prost_reflect::ExtensionDescriptor,
    ) {
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(http_ext) {
                continue;
            }
            let rule = options.get_extension(http_ext);
            let Some(rule) = rule.as_message() else {
                continue;
            };
            let mut rules = vec![rule.clone()];
            if let Some(Value::List(more)) =
                rule.get_field_by_name("additional_bindings").as_deref()
            {
                rules.extend(more.iter().filter_map(|v| v.as_message().cloned()));
            }
            for rule in rules {
                let grpc_path = format!("/{}/{}", service.full_name(), method.name());
                match binding(&rule, &method.input()) {
                    Ok((verb, template, segments, body)) => {
                        self.by_verb.entry(verb.clone()).or_default().push(Route {
                            verb,
                            template,
                            segments,
                            body,
                            grpc_path,
                            rpc: method.name().to_string(),
                            input: method.input(),
                            output: method.output(),
                        })
                    }
                    Err(why) => self.skipped.push(format!("{grpc_path}: {why}")),
                }
            }
        }
    }

    /// Every route, for listings and tests.
    pub fn all(&self) -> impl Iterator<Item = &Route> {
        self.by_verb.values().flatten()
    }

    /// The route serving `verb path` (`path` still percent-encoded), if any; `prefix_only`
    /// restricts the match to templates under `/api/`.
    pub fn find<'a>(
        &'a self,
        verb: &http::Method,
        path: &str,
        api_only: bool,
    ) -> Option<Matched<'a>> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for route in self.by_verb.get(verb)? {
            if api_only && !route.template.starts_with("/api/") {
                continue;
            }
            if let Some(vars) = match_segments(&route.segments, &parts) {
                return Some(Matched { route, vars });
            }
        }
        None
    }

    /// Whether any verb serves `path`, for a 405-style answer.
    pub fn any_verb(&self, path: &str, api_only: bool) -> bool {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.all().any(|r| {
            (!api_only || r.template.starts_with("/api/"))
                && match_segments(&r.segments, &parts).is_some()
        })
    }
}

fn match_segments<'a>(
    segments: &'a [Segment],
    parts: &[&str],
) -> Option<Vec<(&'a [FieldDescriptor], String)>> {
    let mut vars = Vec::new();
    let mut i = 0;
    for seg in segments {
        match seg {
            Segment::Literal(l) => {
                if parts.get(i)? != l {
                    return None;
                }
                i += 1;
            }
            Segment::Var(path) => {
                let raw = parts.get(i)?;
                if raw.is_empty() {
                    return None;
                }
                vars.push((path.as_slice(), percent_decode(raw)?));
                i += 1;
            }
            Segment::Rest(path) => {
                if i >= parts.len() {
                    return None;
                }
                let rest: Option<Vec<String>> =
                    parts[i..].iter().map(|p| percent_decode(p)).collect();
                vars.push((path.as_slice(), rest?.join("/")));
                i = parts.len();
            }
        }
    }
    (i == parts.len()).then_some(vars)
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+` in a path).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

type Binding = (http::Method, String, Vec<Segment>, Body);

fn binding(rule: &DynamicMessage, input: &MessageDescriptor) -> Result<Binding, String> {
    let text = |name: &str| -> String {
        rule.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let (verb, template) = [
        (http::Method::GET, "get"),
        (http::Method::POST, "post"),
        (http::Method::PUT, "put"),
        (http::Method::DELETE, "delete"),
        (http::Method::PATCH, "patch"),
    ]
    .into_iter()
    .find_map(|(verb, field)| {
        let t = text(field);
        (!t.is_empty()).then_some((verb, t))
    })
    .ok_or("no verb")?;
    let segments = parse_template(&template, input)?;
    let body = match text("body").as_str() {
        "" => Body::None,
        "*" => Body::All,
        f => Body::Field(
            input
                .get_field_by_name(f)
                .ok_or_else(|| format!("body field {f} is not in {}", input.full_name()))?,
        ),
    };
    Ok((verb, template, segments, body))
}

fn parse_template(template: &str, input: &MessageDescriptor) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    for part in template.trim_start_matches('/').split('/') {
        if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let (path, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
            let fields = field_path(input, path)?;
            out.push(match pattern {
                "*" => Segment::Var(fields),
                "**" => Segment::Rest(fields),
                p => return Err(format!("pattern {p} in {template}")),
            });
        } else if part.contains('{') || part.contains(':') {
            return Err(format!("segment {part} in {template}"));
        } else {
            out.push(Segment::Literal(part.to_string()));
        }
    }
    Ok(out)
}

/// `execution.workflow_id` → the fields along that path, by proto or JSON name.
pub fn field_path(input: &MessageDescriptor, path: &str) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::new();
    let mut message = input.clone();
    for (i, name) in path.split('.').enumerate() {
        let field = message
            .get_field_by_name(name)
            .or_else(|| message.get_field_by_json_name(name))
            .ok_or_else(|| format!("{} has no field {name}", message.full_name()))?;
        if i + 1 < path.split('.').count() {
            message = match field.kind() {
                prost_reflect::Kind::Message(m) => m,
                _ => return Err(format!("{name} is not a message in {path}")),
            };
        }
        fields.push(field);
    }
    Ok(fields)
}
