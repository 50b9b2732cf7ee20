//! How calls are made: their deadlines, and the retry of transient failures (`call!`).

use std::time::Duration;

/// Long polls are held by the server for up to a minute; give them a little more.
pub(super) const LONG_POLL: Duration = Duration::from_secs(70);
/// Ordinary calls.
pub(super) const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// How long transient failures (server restarting or overloaded) are retried.
pub(super) const RETRY_FOR: Duration = Duration::from_secs(10);

/// Failures worth retrying: the request did not take effect, or repeating it is harmless.
pub(super) fn retryable(s: &tonic::Status) -> bool {
    use std::error::Error as _;
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Aborted => true,
        // The connection broke under the call (not a cancellation by us).
        tonic::Code::Cancelled | tonic::Code::Unknown => s.source().is_some(),
        _ => false,
    }
}

/// Calls an RPC, retrying transient failures for up to [`RETRY_FOR`] with backoff, as the
/// official SDKs do. Every retried request is idempotent (request ids, update ids, reads).
macro_rules! call {
    ($svc:expr, $method:ident, $msg:expr, $timeout:expr) => {{
        use $crate::client::rpc::{RETRY_FOR, request_with_timeout, retryable};
        let msg = $msg;
        let mut delay = ::std::time::Duration::from_millis(50);
        let started = ::tokio::time::Instant::now();
        loop {
            match $svc
                .$method(request_with_timeout(msg.clone(), $timeout))
                .await
            {
                Err(s) if retryable(&s) && started.elapsed() < RETRY_FOR => {
                    ::tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(::std::time::Duration::from_secs(1));
                }
                other => break other,
            }
        }
    }};
}
pub(super) use call;

/// A request that gives up after `timeout` (sent as its `grpc-timeout`).
pub(super) fn request_with_timeout<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}
