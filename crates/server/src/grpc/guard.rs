//! [`Guard`] wraps each generated service: a handler that panics answers INTERNAL instead of
//! dropping the connection, and an RPC Perdure does not implement (the generated traits answer
//! UNIMPLEMENTED "Not yet implemented") gets Perdure's message, `unknown method <rpc> for service
//! <Service>: not implemented by Perdure` (SDKs look for "unknown method"), naming the RPC from
//! the request path.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::NamedService;
use tonic::{Code, Status};

/// The message of the generated default methods.
const DEFAULT_MESSAGE: &str = "Not yet implemented";

fn unknown_method(service: &str, name: &str) -> Status {
    Status::unimplemented(format!(
        "unknown method {name} for service {service}: not implemented by Perdure"
    ))
}

/// `DeprecateNamespace` -> `deprecate_namespace`, as the service trait names the method.
fn snake_case(rpc: &str) -> String {
    let mut s = String::with_capacity(rpc.len() + 8);
    for (i, c) in rpc.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Whether `res` is the answer of a generated default method.
fn is_default_answer(res: &http::Response<Body>) -> bool {
    res.headers()
        .get(Status::GRPC_STATUS)
        .is_some_and(|v| v.as_bytes() == b"12")
        && Status::from_header_map(res.headers())
            .is_some_and(|s| s.code() == Code::Unimplemented && s.message() == DEFAULT_MESSAGE)
}

/// A generated service server whose handler panics answer INTERNAL and whose unimplemented RPCs
/// answer with Perdure's message.
#[derive(Clone)]
pub struct Guard<S>(pub S);

impl<S: NamedService> NamedService for Guard<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Guard<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + NamedService,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let uri = req.uri().clone();
        let answer = self.0.call(req);
        Box::pin(async move {
            let res = match AssertUnwindSafe(answer).catch_unwind().await {
                Ok(res) => res?,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(path = %uri.path(), panic = %what, "a request handler panicked");
                    return Ok(Status::internal(format!(
                        "internal error while handling {}: {what}",
                        uri.path()
                    ))
                    .into_http());
                }
            };
            if !is_default_answer(&res) {
                return Ok(res);
            }
            let service = S::NAME.rsplit('.').next().unwrap_or(S::NAME);
            let rpc = uri.path().rsplit('/').next().unwrap_or_default();
            Ok(unknown_method(service, &snake_case(rpc)).into_http())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn rpc_names_as_the_trait_names_them() {
        assert_eq!(snake_case("DeprecateNamespace"), "deprecate_namespace");
        assert_eq!(
            snake_case("GetWorkflowExecutionHistoryReverse"),
            "get_workflow_execution_history_reverse"
        );
        assert_eq!(snake_case("ListClusters"), "list_clusters");
    }
}

#[cfg(test)]
mod panic_tests {
    use super::*;

    /// A service whose handler panics.
    #[derive(Clone)]
    struct Panics;

    impl NamedService for Panics {
        const NAME: &'static str = "test.v1.Panics";
    }

    impl Service<http::Request<Body>> for Panics {
        type Response = http::Response<Body>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            Box::pin(async { panic!("boom") })
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_internal() {
        let req = http::Request::builder()
            .uri("/test.v1.Panics/Explode")
            .body(Body::empty())
            .unwrap();
        let res = Guard(Panics).call(req).await.unwrap();
        let status = Status::from_header_map(res.headers()).unwrap();
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("boom"), "{}", status.message());
    }
}
