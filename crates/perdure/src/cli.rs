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
    /// API key, sent as `authorization: Bearer <key>`; turns TLS on [env: TEMPORAL_API_KEY].
    #[arg(long, global = true, env = "TEMPORAL_API_KEY", hide_env = true)]
    pub api_key: Option<String>,
    /// Connect with TLS (implied by any other --tls-* flag or --api-key) [env: TEMPORAL_TLS].
    #[arg(long, global = true)]
    pub tls: bool,
    /// PEM file of the CA that signed the server's certificate [env:
    /// TEMPORAL_TLS_SERVER_CA_CERT_PATH].
    #[arg(
        long,
        global = true,
        env = "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        hide_env = true
    )]
    pub tls_ca_path: Option<PathBuf>,
    /// The server CA certificate itself, PEM [env: TEMPORAL_TLS_SERVER_CA_CERT_DATA].
    #[arg(
        long,
        global = true,
        env = "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
        hide_env = true
    )]
    pub tls_ca_data: Option<String>,
    /// PEM file of the client certificate, for mutual TLS [env: TEMPORAL_TLS_CLIENT_CERT_PATH].
    #[arg(
        long,
        global = true,
        env = "TEMPORAL_TLS_CLIENT_CERT_PATH",
        hide_env = true
    )]
    pub tls_cert_path: Option<PathBuf>,
    /// The client certificate itself, PEM [env: TEMPORAL_TLS_CLIENT_CERT_DATA].
    #[arg(
        long,
        global = true,
        env = "TEMPORAL_TLS_CLIENT_CERT_DATA",
        hide_env = true
    )]
    pub tls_cert_data: Option<String>,
    /// PEM file of the client certificate's private key [env: TEMPORAL_TLS_CLIENT_KEY_PATH].
    #[arg(
        long,
        global = true,
        env = "TEMPORAL_TLS_CLIENT_KEY_PATH",
        hide_env = true
    )]
    pub tls_key_path: Option<PathBuf>,
    /// The client private key itself, PEM [env: TEMPORAL_TLS_CLIENT_KEY_DATA].
    #[arg(
        long,
        global = true,
        env = "TEMPORAL_TLS_CLIENT_KEY_DATA",
        hide_env = true
    )]
    pub tls_key_data: Option<String>,
    /// The name the server's certificate must carry (default: the address's host) [env:
    /// TEMPORAL_TLS_SERVER_NAME].
    #[arg(long, global = true, env = "TEMPORAL_TLS_SERVER_NAME", hide_env = true)]
    pub tls_server_name: Option<String>,
}

/// The connection flags that take a value (`--tls` takes none), for [`hoist_connection_flags`].
const CONN_VALUE_FLAGS: &[&str] = &[
    "--address",
    "--namespace",
    "-n",
    "--output",
    "-o",
    "--color",
    "--api-key",
    "--tls-ca-path",
    "--tls-ca-data",
    "--tls-cert-path",
    "--tls-cert-data",
    "--tls-key-path",
    "--tls-key-data",
    "--tls-server-name",
];

/// `temporal` takes its connection flags before the command too (`temporal --address X workflow
/// list`). Clap knows them after the command group (`workflow`, `operator`, ...), where they are
/// global, so connection flags that come before the group are moved to just after it.
pub fn hoist_connection_flags(args: Vec<String>) -> Vec<String> {
    let is_conn = |a: &str| {
        a == "--tls"
            || CONN_VALUE_FLAGS
                .iter()
                .any(|f| a == *f || (f.starts_with("--") && a.starts_with(&format!("{f}="))))
    };
    let mut leading = Vec::new();
    let mut i = 1;
    while i < args.len() && is_conn(&args[i]) {
        leading.push(args[i].clone());
        if CONN_VALUE_FLAGS.contains(&args[i].as_str()) && i + 1 < args.len() {
            i += 1;
            leading.push(args[i].clone());
        }
        i += 1;
    }
    if leading.is_empty() || i >= args.len() || args[i] == "server" {
        return args;
    }
    let mut out = args[..1].to_vec();
    out.push(args[i].clone());
    out.extend(leading);
    out.extend(args[i + 1..].iter().cloned());
    out
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

impl Conn {
    /// TLS and the API key, from the flags (or their `TEMPORAL_*` variables), as `temporal`
    /// takes them: any TLS flag or an API key turns TLS on.
    fn apply_tls(&self, options: &mut ClientOptions) -> anyhow::Result<()> {
        let read = |data: &Option<String>, path: &Option<PathBuf>, what: &str| match (data, path) {
            (Some(_), Some(_)) => Err(anyhow!(
                "give the {what} either as a path or as data, not both"
            )),
            (Some(d), None) => Ok(Some(d.clone().into_bytes())),
            (None, Some(p)) => std::fs::read(p)
                .map(Some)
                .map_err(|e| anyhow!("cannot read the {what} {}: {e}", p.display())),
            (None, None) => Ok(None),
        };
        let ca = read(
            &self.tls_ca_data,
            &self.tls_ca_path,
            "server CA certificate",
        )?;
        let cert = read(
            &self.tls_cert_data,
            &self.tls_cert_path,
            "client certificate",
        )?;
        let key = read(&self.tls_key_data, &self.tls_key_path, "client key")?;
        let env_tls = std::env::var("TEMPORAL_TLS").is_ok_and(|v| v == "true" || v == "1");
        let api_key = self.api_key.clone().filter(|k| !k.is_empty());
        let wanted = self.tls
            || env_tls
            || api_key.is_some()
            || ca.is_some()
            || cert.is_some()
            || key.is_some()
            || self.tls_server_name.is_some();
        if !wanted {
            return Ok(());
        }
        let client_identity = match (cert, key) {
            (Some(cert_pem), Some(key_pem)) => {
                Some(perdure_sdk::ClientIdentity { cert_pem, key_pem })
            }
            (None, None) => None,
            _ => {
                return Err(anyhow!(
                    "mutual TLS needs both a client certificate and its key (--tls-cert-path and --tls-key-path)"
                ));
            }
        };
        options.tls = Some(perdure_sdk::TlsOptions {
            domain: self.tls_server_name.clone(),
            ca_pem: ca,
            client_identity,
        });
        options.api_key = api_key;
        Ok(())
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
        conn.apply_tls(&mut options)?;
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
    /// Payload metadata as KEY=VALUE for every input; `encoding` replaces the default
    /// `json/plain` (then the input is sent as given, not checked as JSON). A key given several
    /// times applies its values to the inputs in turn (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub input_meta: Vec<String>,
    /// The inputs are base64: decode them first.
    #[arg(long)]
    pub input_base64: bool,
}

impl InputArgs {
    /// The inputs as payloads, `json/plain` unless `--input-meta encoding=...` says otherwise,
    /// as `temporal` builds them; a JSON input that does not parse names the input and where.
    pub fn payloads(&self) -> anyhow::Result<Vec<Payload>> {
        let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
        for (i, text) in self.input.iter().enumerate() {
            raw.push((format!("--input #{}", i + 1), text.clone().into_bytes()));
        }
        for path in &self.input_file {
            let bytes = std::fs::read(path)
                .map_err(|e| anyhow!("cannot read --input-file {}: {e}", path.display()))?;
            raw.push((path.display().to_string(), bytes));
        }
        let mut meta: Vec<(String, Vec<String>)> = Vec::new();
        for kv in &self.input_meta {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--input-meta {kv:?} is not KEY=VALUE"))?;
            match meta.iter_mut().find(|(key, _)| key == k) {
                Some((_, values)) => values.push(v.to_string()),
                None => meta.push((k.to_string(), vec![v.to_string()])),
            }
        }
        use base64::Engine as _;
        let mut out = Vec::new();
        for (i, (what, mut data)) in raw.into_iter().enumerate() {
            if self.input_base64 {
                data = base64::engine::general_purpose::STANDARD
                    .decode(data.trim_ascii())
                    .map_err(|e| anyhow!("{what} is not valid base64: {e}"))?;
            }
            let mut metadata =
                std::collections::HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]);
            for (k, values) in &meta {
                metadata.insert(k.clone(), values[i % values.len()].clone().into_bytes());
            }
            if metadata["encoding"] == b"json/plain" {
                serde_json::from_slice::<serde_json::Value>(&data)
                    .map_err(|e| anyhow!("{what} is not valid JSON: {e}"))?;
            }
            out.push(Payload {
                metadata,
                data,
                ..Default::default()
            });
        }
        Ok(out)
    }
}

/// `KEY=JSON` pairs (`--memo`, `--search-attribute`) as a map; `flag` names them in errors.
pub fn json_pairs(
    pairs: &[String],
    flag: &str,
) -> anyhow::Result<std::collections::HashMap<String, serde_json::Value>> {
    pairs
        .iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("{flag} {kv:?} is not KEY=VALUE"))?;
            let value = serde_json::from_str(v)
                .map_err(|e| anyhow!("{flag} {k}: the value is not valid JSON: {e}"))?;
            Ok((k.to_string(), value))
        })
        .collect()
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
            ..Default::default()
        };
        let e = args.payloads().unwrap_err().to_string();
        assert!(e.starts_with("--input #2 is not valid JSON"), "{e}");
        assert!(e.contains("line 1 column 7"), "{e}");
    }

    #[test]
    fn input_meta_applies_repeated_keys_in_turn_as_temporal_does() {
        let args = InputArgs {
            input: vec!["abc".into(), "\"d\"".into(), "3".into()],
            input_meta: vec![
                "encoding=binary/plain".into(),
                "encoding=json/plain".into(),
                "foo=bar".into(),
            ],
            ..Default::default()
        };
        let p = args.payloads().unwrap();
        let enc: Vec<_> = p.iter().map(|p| p.metadata["encoding"].clone()).collect();
        assert_eq!(
            enc,
            [&b"binary/plain"[..], b"json/plain", b"binary/plain"].map(|e| e.to_vec())
        );
        assert!(p.iter().all(|p| p.metadata["foo"] == b"bar"));
        assert_eq!(p[0].data, b"abc");
        let b64 = InputArgs {
            input: vec!["eyJhIjoxfQ==".into()],
            input_base64: true,
            ..Default::default()
        };
        assert_eq!(b64.payloads().unwrap()[0].data, br#"{"a":1}"#);
        let bad = InputArgs {
            input: vec!["abc".into()],
            ..Default::default()
        };
        assert!(
            bad.payloads()
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
    }

    fn hoist(line: &str) -> String {
        super::hoist_connection_flags(line.split(' ').map(String::from).collect()).join(" ")
    }

    #[test]
    fn connection_flags_before_the_command_group_move_after_it() {
        assert_eq!(
            hoist("perdure --address h:1 -n ns workflow list -q x"),
            "perdure workflow --address h:1 -n ns list -q x"
        );
        assert_eq!(
            hoist("perdure --tls --address=h:1 -o json operator namespace list"),
            "perdure operator --tls --address=h:1 -o json namespace list"
        );
        for unchanged in [
            "perdure workflow list --address h:1",
            "perdure server start-dev --port 1",
            "perdure --address h:1",
            "perdure --version",
        ] {
            assert_eq!(hoist(unchanged), unchanged);
        }
    }
}
