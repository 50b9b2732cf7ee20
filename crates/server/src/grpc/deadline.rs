//! Request deadlines: a call's `grpc-timeout`, or a default for calls and long polls.

use std::time::{Duration, Instant};

use tonic::Request;

/// Default deadline of a long poll that carries no `grpc-timeout`.
pub(super) const LONG_POLL_DEFAULT: Duration = Duration::from_secs(70);
/// Default deadline of any other call that waits (query, update) and carries no `grpc-timeout`.
pub(super) const CALL_DEFAULT: Duration = Duration::from_secs(30);

/// Deadline of a request: its `grpc-timeout`, or `default` from now.
pub fn deadline<T>(req: &Request<T>, default: Duration) -> Instant {
    let now = Instant::now();
    req.metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map(|d| now + d)
        .unwrap_or(now + default)
}

/// Parses a `grpc-timeout` header value such as `70S` or `11000m`.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 {
        return None;
    }
    let (num, unit) = v.split_at(v.len() - 1);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}
