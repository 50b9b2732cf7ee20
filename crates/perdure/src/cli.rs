//! What every client command shares: connection flags (`--address`, `--namespace`, `--output`),
//! the connected [`Ctx`], turning SDK errors into one clear line, and reading `--input` JSON.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use perdure_sdk::proto::common::v1::Payload;
use perdure_sdk::{Client, ClientError, ClientOptions};

/// The default server address, as the `temporal` CLI's.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:7233";

/// Connection and output flags, accepted anywhere after `perdure workflow` / `perdure operator`.
#[derive(Args, Clone)]
pub struct Conn {
    /// Server address, host:port [env: PERDURE_ADDRESS, else TEMPORAL_ADDRESS; default
    /// 127.0.0.1:7233].
    #[arg(long, global = true, env = "PERDURE_ADDRESS", hide_env = true)]
    pub address: Option<String>,
    /// Namespace [env: PERDURE_NAMESPACE, else TEMPORAL_NAMESPACE; default "default"].
    #[arg(
        long,
        short = 'n',
        global = true,
        env = "PERDURE_NAMESPACE",
        hide_env = true
    )]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Colour: auto (only on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorMode::Auto)]
    pub color: ColorMode,
}

/// How results are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned tables and key/value blocks for people.
    #[value(alias = "text")]
    Table,
    /// The protobuf JSON form (proto3 mapping), pretty-printed.
    Json,
    /// One compact JSON object per line.
    Jsonl,
}

/// When to colour statuses.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorMode {
    Auto,
    Always,
    Never,
}

/// A connected client plus the flags every command reads.
pub struct Ctx {
    pub client: Client,
    pub address: String,
    pub namespace: String,
    pub output: Output,
    pub color: bool,
}

impl Conn {
    fn address(&self) -> String {
        self.address
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| std::env::var("TEMPORAL_ADDRESS").ok())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string())
    }

    fn namespace(&self) -> String {
        self.namespace
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| std::env::var("TEMPORAL_NAMESPACE").ok())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "default".to_string())
    }
}

/// Connects, then runs one command on a small runtime.
pub fn run<F, Fut>(conn: Conn, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let address = conn.address();
        let namespace = conn.namespace();
        let mut options = ClientOptions::new(address.clone()).namespace(namespace.clone());
        options.connect_timeout = Duration::from_secs(5);
        let client = Client::connect(options)
            .await
            .map_err(|e| client_error(e, &address, &namespace, None))?;
        use std::io::IsTerminal;
        let color = match conn.color {
            ColorMode::Always => true,
            ColorMode::Never => false,
            ColorMode::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        f(Ctx {
            client,
            address,
            namespace,
            output: conn.output,
            color,
        })
        .await
    })
}

/// Prints an error as one line on stderr.
pub fn report(e: &anyhow::Error) {
    let text = format!("{e:#}").replace('\n', " ");
    eprintln!("Error: {text}");
}

/// A workflow execution named on the command line, for error messages.
pub struct Target<'a> {
    pub workflow_id: &'a str,
    pub run_id: Option<&'a str>,
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "workflow {:?}", self.workflow_id)?;
        if let Some(r) = self.run_id {
            write!(f, " (run {r})")?;
        }
        Ok(())
    }
}

/// One clear sentence for an SDK error.
pub fn client_error(
    e: ClientError,
    address: &str,
    namespace: &str,
    target: Option<&Target<'_>>,
) -> anyhow::Error {
    let unreachable =
        || anyhow!("cannot reach the server at {address} — is `perdure server start-dev` running?");
    match e {
        ClientError::Unreachable { .. } => unreachable(),
        ClientError::NamespaceNotFound(ns) => {
            let ns = if ns.is_empty() { namespace } else { &ns };
            anyhow!("namespace {ns:?} not found")
        }
        ClientError::NotFound(msg) => match target {
            Some(t) if msg.contains("already completed") || msg.contains("closed") => {
                anyhow!("{t} is already closed: {msg}")
            }
            Some(t) => anyhow!("{t} not found in namespace {namespace:?}"),
            None => anyhow!("not found: {msg}"),
        },
        ClientError::Rpc(s) if s.code() == tonic::Code::Unavailable => unreachable(),
        ClientError::Rpc(s) => anyhow!("{} ({:?})", s.message(), s.code()),
        other => anyhow!("{other}"),
    }
}

impl Ctx {
    /// An SDK error as one sentence, naming `target` for not-found errors.
    pub fn err(&self, e: ClientError, target: Option<&Target<'_>>) -> anyhow::Error {
        client_error(e, &self.address, &self.namespace, target)
    }

    /// A raw gRPC status as one sentence.
    pub fn status(&self, s: tonic::Status, target: Option<&Target<'_>>) -> anyhow::Error {
        // The SDK reads a bare ALREADY_EXISTS as a workflow start conflict; raw calls here are
        // namespace and search-attribute registrations: their message says what exists.
        if s.code() == tonic::Code::AlreadyExists {
            return anyhow!("{}", s.message());
        }
        self.err(ClientError::from(s), target)
    }
}

/// `--input` / `--input-file`: JSON values, one payload each.
#[derive(Args, Clone, Default)]
pub struct InputArgs {
    /// Input value as JSON (repeatable: one argument each).
    #[arg(long, short = 'i', value_name = "JSON")]
    pub input: Vec<String>,
    /// A file holding one JSON input value (repeatable: one argument each).
    #[arg(long, value_name = "PATH", conflicts_with = "input")]
    pub input_file: Vec<PathBuf>,
}

impl InputArgs {
    /// The inputs as JSON payloads; a parse error names the input and the line/column.
    pub fn payloads(&self) -> anyhow::Result<Vec<Payload>> {
        let mut out = Vec::new();
        for (i, text) in self.input.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| anyhow!("--input #{} is not valid JSON: {e}", i + 1))?;
            out.push(perdure_sdk::payload::to_payload(&v)?);
        }
        for path in &self.input_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow!("cannot read --input-file {}: {e}", path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow!("{} is not valid JSON: {e}", path.display()))?;
            out.push(perdure_sdk::payload::to_payload(&v)?);
        }
        Ok(out)
    }
}

/// Parses a duration like `10s`, `1m30s`, `2h`, `500ms`, `3d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{s:?}: missing unit (ms, s, m, h or d)"))?;
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("{s:?} is not a duration (like 10s, 1m30s, 2h)"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            u => return Err(format!("{s:?}: unknown unit {u:?} (ms, s, m, h or d)")),
        };
        total += n * factor;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| e.to_string())
}

/// A protobuf duration.
pub fn pdur(d: Duration) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn bad_json_input_names_the_position() {
        let args = InputArgs {
            input: vec!["1".into(), "{\"a\": }".into()],
            input_file: vec![],
        };
        let e = args.payloads().unwrap_err().to_string();
        assert!(e.starts_with("--input #2 is not valid JSON"), "{e}");
        assert!(e.contains("line 1 column 7"), "{e}");
    }
}
