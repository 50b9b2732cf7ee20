//! CPU profiles of the whole server process on the metrics listener: `GET
//! /debug/pprof/profile?seconds=N` (Go's pprof path) samples every thread at 99 Hz for `N`
//! seconds (default 10, 1 to 300) and answers a flame graph (`image/svg+xml`), or with
//! `&format=pb` Go's gzipped pprof protobuf for `go tool pprof`.
//!
//! Sampling is pprof-rs: `setitimer(ITIMER_PROF)` delivers SIGPROF as the process uses CPU and
//! the handler records the interrupted thread's stack, so it needs no kernel perf events. Frames
//! are symbolized and demangled when the report is built (release builds keep `debug = 1`), and
//! each stack's root is its thread's name (`tokio-rt-worker`, the SQLite writer, ...). The
//! sampler is process-wide, so one profile runs at a time: a request arriving meanwhile gets 409
//! Conflict. The wait is an async sleep; starting the sampler (its first backtrace loads the
//! symbols) and building and rendering the report run on blocking threads. A client that goes
//! away stops the profile.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use pprof::protos::Message;

/// Sampling frequency: not a divisor of common timer periods, so samples do not fall in step
/// with periodic work.
const FREQUENCY: i32 = 99;
/// Profile length when `seconds` is not given.
const DEFAULT_SECONDS: u64 = 10;
/// Longest profile accepted.
const MAX_SECONDS: u64 = 300;
/// Libraries whose code is not unwound from the signal handler (pprof-rs' advice): unwinding
/// from inside the unwinder, the allocator or the vDSO may deadlock. Time spent there is lost.
const BLOCKLIST: &[&str] = &["libc", "libgcc", "pthread", "vdso"];

/// Held while a profile is being taken (pprof-rs' sampler is one per process).
static BUSY: AtomicBool = AtomicBool::new(false);

/// What a profile request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub seconds: u64,
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A flame graph (inferno's SVG).
    Svg,
    /// `perftools.profiles.Profile`, gzipped, as Go's `net/http/pprof` answers.
    Pb,
}

/// Why a profile could not be taken or rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the CPU sampler: {0}")]
    Start(pprof::Error),
    #[error("cannot build the profile report: {0}")]
    Report(pprof::Error),
    #[error("cannot render the flame graph: {0}")]
    Render(String),
    #[error("cannot encode the profile: {0}")]
    Encode(std::io::Error),
    #[error("the profiling task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Reads `seconds` and `format` from a query string; other parameters are ignored, as Go does.
pub(crate) fn parse(query: Option<&str>) -> Result<Request, String> {
    let mut request = Request {
        seconds: DEFAULT_SECONDS,
        format: Format::Svg,
    };
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "seconds" => {
                request.seconds = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=MAX_SECONDS).contains(s))
                    .ok_or_else(|| {
                        format!("seconds must be a whole number from 1 to {MAX_SECONDS}")
                    })?;
            }
            "format" => {
                request.format = match value {
                    "svg" => Format::Svg,
                    "pb" => Format::Pb,
                    _ => return Err("format must be svg (the default) or pb".into()),
                };
            }
            _ => {}
        }
    }
    Ok(request)
}

/// The handler of `GET /debug/pprof/profile`.
pub(crate) async fn handle(uri: Uri) -> Response {
    let request = match parse(uri.query()) {
        Ok(r) => r,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message),
    };
    match take(request).await {
        Ok(Some(body)) => {
            let headers = match request.format {
                Format::Svg => [
                    (header::CONTENT_TYPE, "image/svg+xml"),
                    (header::CONTENT_DISPOSITION, "inline"),
                ],
                Format::Pb => [
                    (header::CONTENT_TYPE, "application/octet-stream"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"profile\"",
                    ),
                ],
            };
            (headers, body).into_response()
        }
        Ok(None) => plain(
            StatusCode::CONFLICT,
            "a CPU profile is already being taken; retry when it ends".into(),
        ),
        Err(e) => {
            tracing::error!("CPU profile failed: {e}");
            plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

/// Samples the process for `request.seconds` and renders the result; `None` if another profile
/// is running.
async fn take(request: Request) -> Result<Option<Vec<u8>>, Error> {
    let Some(mut session) = tokio::task::spawn_blocking(Session::start).await?? else {
        return Ok(None);
    };
    tokio::time::sleep(Duration::from_secs(request.seconds)).await;
    let body = tokio::task::spawn_blocking(move || {
        let report = session.guard()?.report().build().map_err(Error::Report);
        // Stop sampling before rendering: the rendering is no part of the profile.
        session.stop();
        let report = report?;
        match request.format {
            Format::Svg => svg(&report, request.seconds),
            Format::Pb => pb(&report),
        }
    })
    .await??;
    Ok(Some(body))
}

/// A running sampler; dropping it (also when the request is dropped) stops it and frees [`BUSY`].
struct Session {
    guard: Option<pprof::ProfilerGuard<'static>>,
    /// Whether this session holds [`BUSY`].
    held: bool,
}

impl Session {
    /// Starts sampling, or `None` if a profile is already running. Blocks: the first start
    /// loads the symbols of the executable.
    fn start() -> Result<Option<Session>, Error> {
        if BUSY
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(None);
        }
        // From here on, dropping the session frees BUSY, on success or failure.
        let mut session = Session {
            guard: None,
            held: true,
        };
        session.guard = Some(
            pprof::ProfilerGuardBuilder::default()
                .frequency(FREQUENCY)
                .blocklist(BLOCKLIST)
                .build()
                .map_err(Error::Start)?,
        );
        Ok(Some(session))
    }

    fn guard(&self) -> Result<&pprof::ProfilerGuard<'static>, Error> {
        self.guard
            .as_ref()
            .ok_or(Error::Report(pprof::Error::NotRunning))
    }

    /// Stops the sampler (discarding its samples), then frees [`BUSY`]. Blocks briefly (the
    /// timer, the signal handler and a new sample buffer).
    fn stop(&mut self) {
        drop(self.guard.take());
        if std::mem::take(&mut self.held) {
            BUSY.store(false, Ordering::Release);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        // Dropped unfinished, e.g. in the handler's future when the client went away.
        let mut rest = Session {
            guard: self.guard.take(),
            held: std::mem::take(&mut self.held),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || rest.stop())),
            Err(_) => rest.stop(),
        }
    }
}

/// The flame graph of `report`: one folded stack per line (thread name, then the frames from
/// the outermost, inlined functions expanded), rendered by inferno.
fn svg(report: &pprof::Report, seconds: u64) -> Result<Vec<u8>, Error> {
    let mut folded: BTreeMap<String, isize> = BTreeMap::new();
    for (frames, count) in &report.data {
        let mut line = frames.thread_name_or_id();
        for frame in frames.frames.iter().rev() {
            for symbol in frame.iter().rev() {
                line.push(';');
                // `;` separates frames in the folded format (it occurs in types like `[u8; 4]`).
                line.push_str(&symbol.name().replace(';', ","));
            }
        }
        *folded.entry(line).or_default() += count;
    }
    let samples: isize = folded.values().sum();
    let title = format!("perdure CPU profile: {seconds} s at {FREQUENCY} Hz, {samples} samples");
    if samples == 0 {
        // inferno refuses empty input; say so plainly instead.
        return Ok(format!(
            "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"1200\" \
             height=\"60\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"10\" y=\"36\" \
             font-family=\"Verdana\" font-size=\"14\">{title}: the process used no CPU that \
             could be sampled</text></svg>\n"
        )
        .into_bytes());
    }
    let lines: Vec<String> = folded
        .into_iter()
        .map(|(stack, count)| format!("{stack} {count}"))
        .collect();
    let mut options = pprof::flamegraph::Options::default();
    options.title = title;
    options.count_name = "samples".into();
    let mut out = Vec::new();
    pprof::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut out)
        .map_err(|e| Error::Render(e.to_string()))?;
    Ok(out)
}

/// `report` as Go's pprof protobuf, gzipped.
fn pb(report: &pprof::Report) -> Result<Vec<u8>, Error> {
    let profile = report.pprof().map_err(Error::Report)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&profile.encode_to_vec())
        .map_err(Error::Encode)?;
    gz.finish().map_err(Error::Encode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        let svg = |seconds| {
            Ok(Request {
                seconds,
                format: Format::Svg,
            })
        };
        assert_eq!(parse(None), svg(10));
        assert_eq!(parse(Some("")), svg(10));
        assert_eq!(parse(Some("seconds=1")), svg(1));
        assert_eq!(parse(Some("seconds=300&debug=1")), svg(300));
        assert_eq!(
            parse(Some("format=pb&seconds=3")),
            Ok(Request {
                seconds: 3,
                format: Format::Pb
            })
        );
        for bad in [
            "seconds=0",
            "seconds=301",
            "seconds=abc",
            "seconds=",
            "seconds=-1",
        ] {
            assert!(
                parse(Some(bad)).unwrap_err().starts_with("seconds must"),
                "{bad}"
            );
        }
        assert!(parse(Some("format=text")).is_err());
    }
}
