//! Perdure's web side, served by the `perdure` process: Temporal's **HTTP API** (its routes read
//! from the `google.api.http` annotations of the descriptor set, see [`routes`]) and the **web
//! UI**: server-rendered page shells whose hand-written script fills them from that same API.
//!
//! The web side talks to the engine only through the server's own gRPC port, like any client,
//! so every rule the gRPC frontend enforces holds for the pages too.

pub mod api;
pub mod json;
mod pages;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use api::Api;

/// Why the web side could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid gRPC address {0}: {1}")]
    Address(String, String),
    #[error("the web server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything the web side needs from the server it belongs to.
#[derive(Clone)]
pub struct Backend {
    /// The server's gRPC address (`127.0.0.1:7233`); a wildcard IP is reached over loopback.
    pub grpc: SocketAddr,
    /// Bumped whenever a run starts or closes (`Engine::list_changes`).
    pub list_changes: watch::Receiver<u64>,
}

impl Backend {
    fn api(&self) -> Result<Api, Error> {
        let mut addr = self.grpc;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::Address(addr.to_string(), e.to_string()))?
            .tcp_nodelay(true);
        let routes = routes::Routes::load();
        for skipped in &routes.skipped {
            tracing::warn!("HTTP API: no route for {skipped}");
        }
        Ok(Api {
            routes: Arc::new(routes),
            channel: endpoint.connect_lazy(),
        })
    }
}

#[derive(Clone)]
struct Ui {
    api: Api,
    list_changes: watch::Receiver<u64>,
}

/// Serves the web UI, with the HTTP API under `/api/v1`, on `listener` until `shutdown`.
pub async fn serve_ui(
    backend: Backend,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let ui = Ui {
        api: backend.api()?,
        list_changes: backend.list_changes.clone(),
    };
    let app = pages::router()
        .route("/ui/changes", axum::routing::get(changes))
        .fallback(ui_api)
        .layer(axum::middleware::from_fn(guard))
        .with_state(ui);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Serves only the HTTP API, at every binding Temporal serves (`/namespaces/...` and
/// `/api/v1/namespaces/...`), like `temporal server start-dev --http-port`.
pub async fn serve_http_api(
    backend: Backend,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let api = backend.api()?;
    let app =
        Router::new()
            .fallback(
                |State(api): State<Api>,
                 method: Method,
                 uri: Uri,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    api.serve(method, uri, headers, body, false).await
                },
            )
            .layer(axum::middleware::from_fn(guard))
            .with_state(api);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn ui_api(
    State(ui): State<Ui>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path().starts_with("/api/") {
        ui.api.serve(method, uri, headers, body, true).await
    } else {
        pages::not_found(uri.path())
    }
}

impl axum::extract::FromRef<Ui> for Api {
    fn from_ref(ui: &Ui) -> Api {
        ui.api.clone()
    }
}

/// Server-sent events: one `changed` event (at most every 250 ms) after runs start or close,
/// so an open list re-reads its first page only when there is something new.
async fn changes(State(ui): State<Ui>) -> impl IntoResponse {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let rx = ui.list_changes.clone();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let n = *rx.borrow_and_update();
        Some((
            Ok::<_, std::convert::Infallible>(
                Event::default().event("changed").data(n.to_string()),
            ),
            rx,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Security headers on every answer, and no state change from another site: a request that is
/// not GET/HEAD is refused when the browser says it comes from another origin.
async fn guard(request: Request, next: Next) -> Response {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if unsafe_method && cross_site(request.headers()) {
        let status = tonic::Status::permission_denied(
            "cross-site request refused: state-changing requests must come from this server's own pages",
        );
        return api::error_response(&status, json::Style::default());
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Whether a browser marked the request as coming from another origin (`Sec-Fetch-Site`, or an
/// `Origin` whose host is not the `Host` asked for). Clients that send neither (curl, SDKs)
/// are not browsers and are let through.
fn cross_site(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    match (get("origin"), get("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_annotated_rpc_has_a_route() {
        let routes = routes::Routes::load();
        assert!(routes.skipped.is_empty(), "{:?}", routes.skipped);
        let all: Vec<_> = routes.all().collect();
        assert!(all.len() > 100, "{} routes", all.len());
        let start = routes
            .find(
                &Method::POST,
                "/api/v1/namespaces/default/workflows/a%2Fb",
                true,
            )
            .expect("start route");
        assert_eq!(start.route.rpc, "StartWorkflowExecution");
        assert_eq!(start.vars[1].1, "a/b");
        let history = routes
            .find(
                &Method::GET,
                "/namespaces/default/workflows/w/history",
                false,
            )
            .expect("history route");
        assert_eq!(history.route.rpc, "GetWorkflowExecutionHistory");
        assert!(
            routes
                .find(
                    &Method::GET,
                    "/namespaces/default/workflows/w/history",
                    true
                )
                .is_none()
        );
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h));
        h.insert("host", "127.0.0.1:8233".parse().unwrap());
        h.insert("origin", "http://127.0.0.1:8233".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert("origin", "http://evil.example".parse().unwrap());
        assert!(cross_site(&h));
        h.remove("origin");
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(cross_site(&h));
    }
}
