//! `perdure server start-dev` (zero configuration: a SQLite file and the default namespace) and
//! `perdure server start` (a config file, flags and `PERDURE_*` variables, SQLite or PostgreSQL):
//! both resolve to one [`Settings`] and run the same server.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use perdure_server::Persistence;
use serde::Deserialize;

#[derive(Args)]
pub struct StartDev {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// gRPC port.
    #[arg(long, short = 'p', default_value_t = 7233)]
    port: u16,
    /// SQLite database file (created if missing).
    #[arg(
        long,
        short = 'f',
        default_value = "perdure.db",
        conflicts_with = "in_memory"
    )]
    db_filename: PathBuf,
    /// Keep everything in a throwaway database instead of a file.
    #[arg(long)]
    in_memory: bool,
    /// Extra namespace to create at start-up (repeatable); `default` always exists.
    #[arg(long, short = 'n')]
    namespace: Vec<String>,
    /// Do not start the web UI.
    #[arg(long)]
    headless: bool,
    /// Web UI (and HTTP API under /api/v1) port [default: gRPC port + 1000, i.e. 8233].
    #[arg(long)]
    ui_port: Option<u16>,
    /// Address the web UI listens on [default: --ip].
    #[arg(long)]
    ui_ip: Option<IpAddr>,
    /// Also serve Temporal's HTTP API alone, at all its paths, on this port (like
    /// `temporal server start-dev --http-port`).
    #[arg(long)]
    http_port: Option<u16>,
    /// Serve Prometheus metrics on this port at /metrics, and CPU profiles at
    /// /debug/pprof/profile.
    #[arg(long)]
    metrics_port: Option<u16>,
    /// Most workflow runs kept in memory; idle runs beyond it are read from the database on
    /// their next use [default: 10000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    run_cache_size: Option<u64>,
    /// Most workflow and activity tasks held in memory waiting for a poller; beyond it a task
    /// stays in the database only and is queued again once the backlog drains [default: 100000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    queued_task_limit: Option<u64>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// A limit as KEY=VALUE with Temporal's dynamic config key, e.g.
    /// `limit.blobSize.error=4194304` (repeatable; `temporal server start-dev` takes the same).
    #[arg(long, value_name = "KEY=VALUE")]
    dynamic_config_value: Vec<String>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `perdure server start`: every setting is a flag, a `PERDURE_*` environment variable and a key
/// of the config file (flag > variable > file > default).
#[derive(Args)]
pub struct Start {
    /// TOML file with any of the settings below, keys spelled as the flags without `--`
    /// (`persistence-url = "postgres://..."`). An unknown key is an error.
    #[arg(long, short = 'c', env = "PERDURE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where state lives: `sqlite:///path/to/file.db` or
    /// `postgres://user:password@host:port/database` [default: sqlite://perdure.db].
    #[arg(long, env = "PERDURE_PERSISTENCE_URL", value_name = "URL")]
    persistence_url: Option<String>,
    /// PostgreSQL reader connections per process [default: 4].
    #[arg(long, env = "PERDURE_PERSISTENCE_POOL_SIZE", value_name = "N")]
    persistence_pool_size: Option<usize>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "PERDURE_IP")]
    ip: Option<IpAddr>,
    /// gRPC port [default: 7233].
    #[arg(long, short = 'p', env = "PERDURE_PORT")]
    port: Option<u16>,
    /// Web UI and HTTP API port [default: gRPC port + 1000].
    #[arg(long, env = "PERDURE_UI_PORT")]
    ui_port: Option<u16>,
    /// Do not start the web UI.
    #[arg(long, env = "PERDURE_HEADLESS", num_args = 0..=1, default_missing_value = "true")]
    headless: Option<bool>,
    /// Also serve Temporal's HTTP API alone, at all its paths, on this port [default: none].
    #[arg(long, env = "PERDURE_HTTP_PORT")]
    http_port: Option<u16>,
    /// Serve Prometheus metrics on this port at /metrics, and CPU profiles at
    /// /debug/pprof/profile [default: none].
    #[arg(long, env = "PERDURE_METRICS_PORT")]
    metrics_port: Option<u16>,
    /// This process's name in the cluster; unique per process [default: perdure-<pid>].
    #[arg(long, env = "PERDURE_NODE_NAME")]
    node_name: Option<String>,
    /// Number of shards executions are spread over: a new cluster's count, or a larger one to
    /// re-shard a live cluster (it can never be lowered) [default: 16, or the cluster's].
    #[arg(long, env = "PERDURE_SHARDS")]
    shards: Option<i32>,
    /// Address other server processes forward requests to [default: --ip:--port].
    #[arg(long, env = "PERDURE_ADVERTISE_ADDRESS", value_name = "HOST:PORT")]
    advertise_address: Option<String>,
    /// How long a heartbeat and the leader's lease last, e.g. `5s` or `1500ms` [default: 5s].
    #[arg(long, env = "PERDURE_LEASE", value_parser = parse_duration)]
    lease: Option<Duration>,
    /// Most workflow runs kept in memory; idle runs beyond it are read from the database on
    /// their next use [default: 10000].
    #[arg(long, env = "PERDURE_RUN_CACHE_SIZE", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    run_cache_size: Option<u64>,
    /// Most workflow and activity tasks held in memory waiting for a poller; beyond it a task
    /// stays in the database only and is queued again once the backlog drains [default: 100000].
    #[arg(long, env = "PERDURE_QUEUED_TASK_LIMIT", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    queued_task_limit: Option<u64>,
    /// Namespaces to create at start-up (repeatable, or comma-separated); `default` always
    /// exists.
    #[arg(
        long = "namespace",
        short = 'n',
        env = "PERDURE_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long, env = "PERDURE_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "PERDURE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// A limit as KEY=VALUE with Temporal's dynamic config key (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    dynamic_config_value: Vec<String>,
}

/// The config file: the same settings as [`Start`]'s flags.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    persistence_url: Option<String>,
    persistence_pool_size: Option<usize>,
    ip: Option<IpAddr>,
    port: Option<u16>,
    ui_port: Option<u16>,
    headless: Option<bool>,
    http_port: Option<u16>,
    metrics_port: Option<u16>,
    node_name: Option<String>,
    shards: Option<i32>,
    advertise_address: Option<String>,
    lease: Option<String>,
    run_cache_size: Option<u64>,
    queued_task_limit: Option<u64>,
    namespaces: Option<Vec<String>>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    dynamic_config_value: Option<Vec<String>>,
}

/// Everything a server process needs, resolved.
pub struct Settings {
    persistence: Persistence,
    ip: IpAddr,
    port: u16,
    ui_ip: IpAddr,
    ui_port: Option<u16>,
    headless: bool,
    http_port: Option<u16>,
    metrics_port: Option<u16>,
    node_name: Option<String>,
    shards: Option<i32>,
    advertise_address: Option<String>,
    lease: Option<Duration>,
    run_cache_size: Option<usize>,
    queued_task_limit: Option<usize>,
    namespaces: Vec<String>,
    log_level: String,
    log_format: LogFormat,
    dynamic_config_value: Vec<String>,
}

impl From<StartDev> for Settings {
    fn from(a: StartDev) -> Settings {
        Settings {
            persistence: Persistence::Sqlite((!a.in_memory).then_some(a.db_filename)),
            ip: a.ip,
            port: a.port,
            ui_ip: a.ui_ip.unwrap_or(a.ip),
            ui_port: a.ui_port,
            headless: a.headless,
            http_port: a.http_port,
            metrics_port: a.metrics_port,
            node_name: None,
            shards: None,
            advertise_address: None,
            lease: None,
            run_cache_size: a.run_cache_size.map(|n| n as usize),
            queued_task_limit: a.queued_task_limit.map(|n| n as usize),
            namespaces: a.namespace,
            log_level: a.log_level,
            log_format: LogFormat::Text,
            dynamic_config_value: a.dynamic_config_value,
        }
    }
}

fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default();
        anyhow!(
            "invalid config file {}{line}: {}",
            path.display(),
            e.message().trim()
        )
    })
}

impl Start {
    /// Merges flags and variables over the config file over the defaults, and checks the result.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(p) => read_config(p)?,
            None => FileConfig::default(),
        };
        let pool = self
            .persistence_pool_size
            .or(file.persistence_pool_size)
            .unwrap_or(4);
        let url = self
            .persistence_url
            .or(file.persistence_url)
            .unwrap_or_else(|| "sqlite://perdure.db".into());
        let persistence = Persistence::from_url(&url, pool).map_err(|e| anyhow!(e))?;
        let shards = self.shards.or(file.shards);
        if let Some(n) = shards
            && !(1..=4096).contains(&n)
        {
            bail!("--shards must be between 1 and 4096, got {n}");
        }
        let node_name = self.node_name.or(file.node_name);
        if let Some(n) = &node_name
            && (n.is_empty() || n.len() > 200)
        {
            bail!("--node-name must be 1 to 200 characters");
        }
        let ip = self.ip.or(file.ip).unwrap_or([127, 0, 0, 1].into());
        let namespaces = if self.namespaces.is_empty() {
            file.namespaces.unwrap_or_default()
        } else {
            self.namespaces
        };
        let dynamic_config_value = if self.dynamic_config_value.is_empty() {
            file.dynamic_config_value.unwrap_or_default()
        } else {
            self.dynamic_config_value
        };
        let lease = match self.lease {
            Some(l) => Some(l),
            None => file
                .lease
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| anyhow!("invalid lease in the config file: {e}"))?,
        };
        if lease.is_some_and(|l| l < Duration::from_millis(200)) {
            bail!("--lease must be at least 200ms");
        }
        let run_cache_size = self.run_cache_size.or(file.run_cache_size);
        if run_cache_size == Some(0) {
            bail!("run-cache-size must be at least 1");
        }
        let queued_task_limit = self.queued_task_limit.or(file.queued_task_limit);
        if queued_task_limit == Some(0) {
            bail!("queued-task-limit must be at least 1");
        }
        Ok(Settings {
            persistence,
            advertise_address: self.advertise_address.or(file.advertise_address),
            lease,
            run_cache_size: run_cache_size.map(|n| n as usize),
            queued_task_limit: queued_task_limit.map(|n| n as usize),
            ip,
            port: self.port.or(file.port).unwrap_or(7233),
            ui_ip: ip,
            ui_port: self.ui_port.or(file.ui_port),
            headless: self.headless.or(file.headless).unwrap_or(false),
            http_port: self.http_port.or(file.http_port),
            metrics_port: self.metrics_port.or(file.metrics_port),
            node_name,
            shards,
            namespaces,
            log_level: self
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            dynamic_config_value,
        })
    }
}

/// `5s`, `1500ms`, `2m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 5s or 1500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(format!("{s:?} is not a duration like 5s or 1500ms")),
    }
}

fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},h2=warn,tower=warn,hyper=warn,tokio_postgres=warn,pprof=warn"
    ))
    .map_err(|_| anyhow!("invalid log level {level:?}: use error, warn, info, debug or trace"))?;
    // Colours only on a terminal: a log written to a file stays plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Runs a server process until Ctrl-C (or SIGTERM). A process that must step down from leading
/// its cluster drops everything it runs (its whole runtime) and joins again as a follower.
pub fn run(args: Settings) -> anyhow::Result<()> {
    init_logging(&args.log_level, args.log_format)?;
    let mut rejoins = 0;
    // The gRPC port stays open across restarts of the engine: clients that connect meanwhile
    // wait in the backlog instead of being refused.
    let mut grpc: Option<std::net::TcpListener> = None;
    loop {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let exit = rt.block_on(run_once(&args, &mut grpc));
        rt.shutdown_timeout(Duration::from_secs(2));
        match exit {
            Ok(perdure_server::Exit::Stopped) => return Ok(()),
            Ok(perdure_server::Exit::Demoted(why)) => {
                eprintln!("Perdure server stepped down ({why}); joining the cluster again");
                rejoins = 1;
            }
            // Joining again after stepping down: a database that is away for a while is waited
            // for (up to a minute), not a reason to exit.
            Err(e) if (1..60).contains(&rejoins) => {
                eprintln!("Perdure server cannot join the cluster yet ({e:#}); retrying");
                rejoins += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

async fn run_once(
    args: &Settings,
    grpc: &mut Option<std::net::TcpListener>,
) -> anyhow::Result<perdure_server::Exit> {
    let started = Instant::now();
    {
        let mut limits = perdure_server::Limits::default();
        for setting in &args.dynamic_config_value {
            use perdure_server::dynamic_config::{Outcome, apply};
            match apply(&mut limits, setting).context("invalid --dynamic-config-value")? {
                Outcome::Applied | Outcome::AlwaysOn => {}
                Outcome::CannotDisable => tracing::warn!(
                    "--dynamic-config-value {setting}: Perdure cannot turn this feature off; it stays on"
                ),
                Outcome::Unknown => tracing::warn!(
                    "--dynamic-config-value {setting}: Perdure does not know this key; ignored"
                ),
            }
        }
        let addr = SocketAddr::new(args.ip, args.port);
        if grpc.is_none() {
            let l = perdure_server::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            *grpc = Some(l.into_std()?);
        }
        let kept = grpc.as_ref().expect("bound above").try_clone()?;
        kept.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(kept)?;
        let storage = args.persistence.describe();
        let config = perdure_server::ServerConfig {
            persistence: args.persistence.clone(),
            namespaces: args.namespaces.clone(),
            limits,
            node_name: args.node_name.clone(),
            shards: args.shards,
            advertise_address: args.advertise_address.clone(),
            lease: args.lease,
            run_cache_size: args.run_cache_size,
            queued_task_limit: args.queued_task_limit,
        };
        let shutdown = async {
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        };
        let web = web_listeners(args, listener.local_addr()?).await?;
        let ui_addr = web.ui.as_ref().and_then(|l| l.local_addr().ok());
        let api_addr = web.http_api.as_ref().and_then(|l| l.local_addr().ok());
        let metrics_addr = web.metrics.as_ref().and_then(|l| l.local_addr().ok());
        let addr = listener.local_addr()?;
        let server = tokio::spawn(perdure_server::run_member(config, listener, web, shutdown));
        tracing::info!(
            "Perdure server listening on {addr} (storage: {storage}); ready in {:?}",
            started.elapsed()
        );
        eprintln!("Perdure server: gRPC on {addr}, database: {storage}");
        if let Some(ui) = ui_addr {
            eprintln!("Web UI: http://{ui}");
        }
        if let Some(api) = api_addr {
            eprintln!("HTTP API: http://{api}/api/v1/namespaces");
        }
        if let Some(m) = metrics_addr {
            eprintln!("Metrics: http://{m}/metrics");
        }
        server.await?.context("server failed")
    }
}

/// Binds the web UI (unless headless), the HTTP API port and the metrics port. An explicit port
/// that cannot be bound is an error; the default UI port (gRPC port + 1000) only a warning.
async fn web_listeners(
    args: &Settings,
    grpc: SocketAddr,
) -> anyhow::Result<perdure_server::WebListeners> {
    let mut web = perdure_server::WebListeners::default();
    if !args.headless {
        let explicit = args.ui_port.is_some();
        let port = match args.ui_port {
            Some(p) => Some(p),
            None if grpc.port() == 0 => Some(0),
            None => grpc.port().checked_add(1000),
        };
        if let Some(port) = port {
            let addr = SocketAddr::new(args.ui_ip, port);
            match perdure_server::bind(addr).await {
                Ok(l) => web.ui = Some(l),
                Err(e) if explicit => {
                    return Err(e)
                        .with_context(|| format!("cannot listen on {addr} for the web UI"));
                }
                Err(e) => tracing::warn!("no web UI: cannot listen on {addr}: {e}"),
            }
        }
    }
    if let Some(port) = args.http_port {
        let addr = SocketAddr::new(args.ip, port);
        web.http_api = Some(
            perdure_server::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for the HTTP API"))?,
        );
    }
    if let Some(port) = args.metrics_port {
        let addr = SocketAddr::new(args.ip, port);
        web.metrics = Some(
            perdure_server::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?,
        );
    }
    Ok(web)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        start: Start,
    }

    fn resolve(args: &[&str]) -> anyhow::Result<Settings> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))?
            .start
            .resolve()
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("perdure.toml");
        std::fs::write(
            &f,
            "persistence-url = \"postgres://u:p@db:5432/perdure\"\nport = 9000\nshards = 32\n\
             node-name = \"a\"\nnamespaces = [\"orders\"]\nlog-format = \"json\"\n\
             queued-task-limit = 500\n",
        )
        .unwrap();
        let s = resolve(&["--config", f.to_str().unwrap(), "--port", "9100"]).unwrap();
        assert_eq!(s.port, 9100, "the flag wins");
        assert_eq!(s.shards, Some(32));
        assert_eq!(s.node_name.as_deref(), Some("a"));
        assert_eq!(s.namespaces, vec!["orders".to_string()]);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.queued_task_limit, Some(500));
        assert!(matches!(
            s.persistence,
            Persistence::Postgres { pool_size: 4, .. }
        ));
        let s = resolve(&[]).unwrap();
        assert_eq!(s.port, 7233);
        assert_eq!(
            s.persistence,
            Persistence::Sqlite(Some("perdure.db".into()))
        );
    }

    #[test]
    fn bad_settings_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, "port = 1\ncolour = \"blue\"\n").unwrap();
        let e = format!(
            "{:#}",
            resolve(&["--config", f.to_str().unwrap()]).err().unwrap()
        );
        assert!(e.contains("unknown field `colour`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = resolve(&["--persistence-url", "mysql://x"]).err().unwrap();
        assert!(e.to_string().contains("unsupported persistence URL"), "{e}");
        let e = resolve(&["--shards", "0"]).err().unwrap();
        assert!(e.to_string().contains("--shards"), "{e}");
        let e = resolve(&["--queued-task-limit", "0"]).err().unwrap();
        assert!(e.to_string().contains("--queued-task-limit"), "{e}");
        std::fs::write(&f, "queued-task-limit = 0\n").unwrap();
        let e = resolve(&["--config", f.to_str().unwrap()]).err().unwrap();
        assert!(
            e.to_string()
                .contains("queued-task-limit must be at least 1"),
            "{e}"
        );
        let e = resolve(&["--config", "/nonexistent/perdure.toml"])
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("cannot read config file"), "{e}");
    }
}
