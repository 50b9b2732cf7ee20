//! The two web apps, served by axum from this process: the menu (customers order and follow
//! their orders) and the driver portal (pick up, deliver). Pages are rendered on the server;
//! `assets/app.js` keeps them live with server-sent events carrying the re-rendered fragments.

pub mod render;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use perdure_sdk::client::json_map;
use perdure_sdk::{ClientError, StartOptions};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::book::{Book, OrderView, Snapshot, unreachable};
use crate::order::{self, OrderRequest, state};
use render::App;

/// What both apps need.
pub struct Site {
    pub book: Book,
    pub namespace: String,
    /// The task queue new orders go to.
    pub task_queue: String,
    /// "Rust" or "TypeScript".
    pub worker_label: String,
    /// Base URL of the Perdure (or Temporal) web UI, for links to each order's workflow.
    pub ui_url: Option<String>,
    pub menu_url: String,
    pub driver_url: String,
    /// Pickup and delivery timeouts for new orders (the workflow's default when `None`).
    pub timeout: Option<Duration>,
    /// Becomes true when the process shuts down (ends the live streams).
    pub stopping: watch::Receiver<bool>,
}

type Shared = Arc<Site>;

/// A fresh, unguessable order id (the workflow id of the order it names).
pub fn new_order_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("order-{}", &u[..12])
}

/// Serves the menu app on `listener` until `site.stopping` turns true.
pub async fn serve_menu(site: Shared, listener: TcpListener) -> std::io::Result<()> {
    let router = Router::new()
        .route("/", get(menu_page))
        .route("/orders", post(place_order).get(all_orders))
        .route("/orders/{id}", get(order_page))
        .route("/events", get(events_menu));
    serve(site, listener, router).await
}

/// Serves the driver portal on `listener` until `site.stopping` turns true.
pub async fn serve_driver(site: Shared, listener: TcpListener) -> std::io::Result<()> {
    let router = Router::new()
        .route("/", get(driver_page))
        .route("/orders/{id}/pickup", post(pick_up))
        .route("/orders/{id}/deliver", post(deliver))
        .route("/events", get(events_driver));
    serve(site, listener, router).await
}

async fn serve(site: Shared, listener: TcpListener, router: Router<Shared>) -> std::io::Result<()> {
    let mut stop = site.stopping.clone();
    let app = router
        .route("/assets/{*file}", get(asset))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/assets/logo.svg") }),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(guard))
        .with_state(site);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn menu_page(State(site): State<Shared>) -> Response {
    let body = render::menu(&site);
    html(
        StatusCode::OK,
        render::page(&site, App::Menu, "Perdure Eats", "menu", None, &body),
    )
}

async fn driver_page(State(site): State<Shared>) -> Response {
    let body = render::driver(&site);
    html(
        StatusCode::OK,
        render::page(
            &site,
            App::Driver,
            "Perdure Eats · Driver portal",
            "driver",
            None,
            &body,
        ),
    )
}

async fn not_found(State(site): State<Shared>, headers: HeaderMap) -> Response {
    let app = app_of(&site, &headers);
    let body = render::message("Page not found", "There is nothing at this address.");
    html(
        StatusCode::NOT_FOUND,
        render::page(&site, app, "Not found · Perdure Eats", "none", None, &body),
    )
}

/// Which app a request reached, from its Host header's port.
fn app_of(site: &Site, headers: &HeaderMap) -> App {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host.is_empty() && site.driver_url.ends_with(host) {
        App::Driver
    } else {
        App::Menu
    }
}

/// Answers an action: JSON for the page's script, a page (or a redirect) without it.
fn answer(
    site: &Site,
    headers: &HeaderMap,
    app: App,
    result: Result<(String, Option<String>), (StatusCode, String)>,
    redirect: &str,
    next_order_id: Option<String>,
) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    match (result, wants_json) {
        (Ok((message, id)), true) => axum::Json(serde_json::json!({
            "message": message,
            "id": id,
            "next_order_id": next_order_id,
        }))
        .into_response(),
        (Ok(_), false) => Redirect::to(redirect).into_response(),
        (Err((status, error)), true) => (
            status,
            axum::Json(serde_json::json!({ "error": error, "next_order_id": next_order_id })),
        )
            .into_response(),
        (Err((status, error)), false) => html(
            status,
            render::page(
                site,
                app,
                "Something went wrong · Perdure Eats",
                "none",
                None,
                &render::message("Something went wrong", &error),
            ),
        ),
    }
}

/// A client error as an HTTP status and a sentence for the page.
fn failed(site: &Site, e: &ClientError) -> (StatusCode, String) {
    if unreachable(e) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Cannot reach the Perdure server at {}: {e}",
                site.book.address()
            ),
        )
    } else if let ClientError::NotFound(_) = e {
        (StatusCode::NOT_FOUND, format!("No such order: {e}"))
    } else {
        (StatusCode::BAD_GATEWAY, e.to_string())
    }
}

#[derive(Deserialize)]
struct OrderForm {
    product_id: u32,
    order_id: String,
}

/// Whether `id` looks like an order id this app makes (`order-` and up to 64 safe characters).
fn valid_order_id(id: &str) -> bool {
    id.strip_prefix("order-").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

async fn place_order(
    State(site): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<OrderForm>,
) -> Response {
    let result = start_order(&site, &form).await;
    let redirect = format!("/orders/{}", render::seg(&form.order_id));
    // After a server-side failure the start may still have happened: keep the id for the retry.
    let next = match &result {
        Err((status, _)) if status.is_server_error() => None,
        _ => Some(new_order_id()),
    };
    answer(
        &site,
        &headers,
        App::Menu,
        result.map(|m| (m, Some(form.order_id.clone()))),
        &redirect,
        next,
    )
}

/// Starts the order's workflow. The order id is the workflow id and the request id, so a
/// repeated submission (a double click, a resent form) finds the same order instead of a second.
async fn start_order(site: &Site, form: &OrderForm) -> Result<String, (StatusCode, String)> {
    let Some(product) = order::product(form.product_id) else {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("There is no product {} on the menu.", form.product_id),
        ));
    };
    if !valid_order_id(&form.order_id) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("{:?} is not a valid order id.", form.order_id),
        ));
    }
    let client = site
        .book
        .client_or_unreachable()
        .await
        .map_err(|e| failed(site, &e))?;
    let ms = site.timeout.map(|t| t.as_millis() as u64);
    let request = OrderRequest {
        product_id: product.id,
        pickup_timeout_ms: ms,
        delivery_timeout_ms: ms,
    };
    let mut options = StartOptions::new(&form.order_id, &site.task_queue);
    options.request_id = Some(form.order_id.clone());
    options.id_reuse_policy =
        Some(perdure_sdk::proto::enums::v1::WorkflowIdReusePolicy::RejectDuplicate);
    options.memo = json_map([("productId", product.id)]);
    match client
        .start_workflow(order::WORKFLOW_TYPE, (request,), options)
        .await
    {
        Ok(_) | Err(ClientError::WorkflowAlreadyStarted { .. }) => {
            Ok(format!("Ordered: {}. Follow it below.", product.name))
        }
        Err(e) => Err(failed(site, &e)),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: Option<String>,
}

/// `/orders`: every order, 50 at a time, newest first.
async fn all_orders(State(site): State<Shared>, Query(q): Query<PageQuery>) -> Response {
    let title = "All orders · Perdure Eats";
    let token = match q.page.as_deref().map(from_hex) {
        None => Vec::new(),
        Some(Some(t)) => t,
        Some(None) => {
            return html(
                StatusCode::BAD_REQUEST,
                render::page(
                    &site,
                    App::Menu,
                    title,
                    "none",
                    None,
                    &render::message("Bad page", "That page link is not valid."),
                ),
            );
        }
    };
    match site.book.page(50, token).await {
        Ok((orders, next)) => {
            let next = (!next.is_empty()).then(|| to_hex(&next));
            let body = render::all_orders(&site, &orders, next.as_deref(), q.page.is_none());
            html(
                StatusCode::OK,
                render::page(&site, App::Menu, title, "none", None, &body),
            )
        }
        Err(e) => {
            let (status, text) = failed(&site, &e);
            html(
                status,
                render::page(
                    &site,
                    App::Menu,
                    title,
                    "none",
                    None,
                    &render::message("Cannot list the orders", &text),
                ),
            )
        }
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 8192 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn order_page(State(site): State<Shared>, Path(id): Path<String>) -> Response {
    let title = "Your order · Perdure Eats";
    match site.book.load(&id).await {
        Ok(Some(o)) => html(
            StatusCode::OK,
            render::page(
                &site,
                App::Menu,
                title,
                "order",
                Some(&o.id),
                &render::order_page(&site, &o),
            ),
        ),
        Ok(None) => html(
            StatusCode::NOT_FOUND,
            render::page(
                &site,
                App::Menu,
                "Order not found · Perdure Eats",
                "none",
                None,
                &render::message(
                    "Order not found",
                    &format!("There is no order with id {id}."),
                ),
            ),
        ),
        Err(e) => {
            let (status, text) = failed(&site, &e);
            html(
                status,
                render::page(
                    &site,
                    App::Menu,
                    title,
                    "none",
                    None,
                    &render::message("Cannot show this order", &text),
                ),
            )
        }
    }
}

async fn pick_up(
    State(site): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = signal(
        &site,
        &id,
        "pickedUp",
        [state::PAID, state::PICKED_UP],
        "picked up",
    )
    .await;
    answer(&site, &headers, App::Driver, result, "/", None)
}

async fn deliver(
    State(site): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = signal(
        &site,
        &id,
        "delivered",
        [state::PICKED_UP, state::DELIVERED],
        "delivered",
    )
    .await;
    answer(&site, &headers, App::Driver, result, "/", None)
}

/// Sends `signal` to order `id` if it is in state `from` (the workflow ignores it otherwise,
/// and the driver should know why nothing happened), then waits up to 3 s to see it reach `to`.
async fn signal(
    site: &Site,
    id: &str,
    signal: &str,
    [from, to]: [&str; 2],
    done: &str,
) -> Result<(String, Option<String>), (StatusCode, String)> {
    let order = match site.book.load_fresh(id).await {
        Ok(Some(mut o)) => {
            // No worker answered: go by the last state the pages showed. The signal is kept
            // by the server and handled when a worker is back.
            if o.status.is_none()
                && let Some(seen) = site.book.snapshot().orders.iter().find(|s| s.id == id)
            {
                o.status = seen.status.clone();
            }
            o
        }
        Ok(None) => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("There is no order with id {id}."),
            ));
        }
        Err(e) => return Err(failed(site, &e)),
    };
    if order.status.is_none() && order.open {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            order
                .problem
                .unwrap_or_else(|| "The order's status is not known yet.".into()),
        ));
    }
    if !order.open || order.state() != from {
        return Err((
            StatusCode::CONFLICT,
            format!(
                "Order {id} is {}: it cannot be {done} now.",
                order.state().to_lowercase()
            ),
        ));
    }
    let client = site
        .book
        .client_or_unreachable()
        .await
        .map_err(|e| failed(site, &e))?;
    client
        .workflow_handle(id, Some(order.run_id.clone()))
        .signal(signal, ())
        .await
        .map_err(|e| failed(site, &e))?;
    // The workflow ignores the signal if the order moved on meanwhile (the pickup timer fired,
    // another driver was quicker): say so instead of claiming success.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match site.book.load_fresh(id).await {
            Ok(Some(now)) => match now.status.as_ref().map(|s| s.state.as_str()) {
                Some(st) if st == from && now.open => {}
                Some(st) if st == to => break,
                Some(st) => {
                    return Err((
                        StatusCode::CONFLICT,
                        format!(
                            "Order {id} is {} now: it was not {done}.",
                            st.to_lowercase()
                        ),
                    ));
                }
                // No worker answers: the signal waits on the server until one is back.
                None => {
                    return Ok((
                        format!("Order {id}: sent; it is {done} as soon as a worker is back."),
                        Some(id.to_string()),
                    ));
                }
            },
            Ok(None) => break,
            Err(e) => return Err(failed(site, &e)),
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok((format!("Order {id} {done}."), Some(id.to_string())))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    view: String,
    #[serde(default)]
    id: Option<String>,
}

async fn events_menu(State(site): State<Shared>, Query(q): Query<EventsQuery>) -> Response {
    let view = match (q.view.as_str(), q.id) {
        ("order", Some(id)) => View::Order(id),
        _ => View::Menu,
    };
    live(site, view).into_response()
}

async fn events_driver(State(site): State<Shared>) -> Response {
    live(site, View::Driver).into_response()
}

#[derive(Clone)]
enum View {
    Menu,
    Driver,
    Order(String),
}

/// The fragments of one view for one snapshot, as one JSON object keyed by element id.
async fn fragments(site: &Site, view: &View, snap: &Snapshot) -> String {
    let banner = render::banner(site, snap);
    let body = match view {
        View::Menu => {
            serde_json::json!({ "banner": banner, "orders": render::menu_orders(site, snap) })
        }
        View::Driver => {
            serde_json::json!({ "banner": banner, "queue": render::driver_orders(site, snap) })
        }
        View::Order(id) => {
            let found: Option<OrderView> = match snap.orders.iter().find(|o| &o.id == id) {
                Some(o) => Some(o.clone()),
                None => site.book.load(id).await.ok().flatten(),
            };
            match found {
                Some(o) => {
                    serde_json::json!({ "banner": banner, "detail": render::order_detail(site, &o) })
                }
                None => serde_json::json!({ "banner": banner }),
            }
        }
    };
    body.to_string()
}

/// Server-sent events: the view's fragments now, then whenever they change.
fn live(site: Shared, view: View) -> impl IntoResponse {
    let rx = site.book.subscribe();
    let stream = futures::stream::unfold(
        (site, view, rx, None::<String>),
        |(site, view, mut rx, last)| async move {
            loop {
                if last.is_some() {
                    let mut stop = site.stopping.clone();
                    tokio::select! {
                        r = rx.changed() => r.ok()?,
                        _ = stop.wait_for(|s| *s) => return None,
                    }
                }
                let snap = rx.borrow_and_update().clone();
                let data = fragments(&site, &view, &snap).await;
                if last.as_ref() != Some(&data) {
                    let event = Event::default().data(data.clone());
                    return Some((Ok::<_, Infallible>(event), (site, view, rx, Some(data))));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The files under `assets/`, built into the binary.
fn asset_bytes(path: &str) -> Option<(&'static [u8], &'static str)> {
    const SVG: &str = "image/svg+xml";
    Some(match path {
        "style.css" => (
            include_bytes!("../../assets/style.css"),
            "text/css; charset=utf-8",
        ),
        "app.js" => (
            include_bytes!("../../assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "logo.svg" => (include_bytes!("../../assets/logo.svg"), SVG),
        "products/pizza.svg" => (include_bytes!("../../assets/products/pizza.svg"), SVG),
        "products/burger.svg" => (include_bytes!("../../assets/products/burger.svg"), SVG),
        "products/sushi.svg" => (include_bytes!("../../assets/products/sushi.svg"), SVG),
        "products/ramen.svg" => (include_bytes!("../../assets/products/ramen.svg"), SVG),
        "products/tacos.svg" => (include_bytes!("../../assets/products/tacos.svg"), SVG),
        "products/salad.svg" => (include_bytes!("../../assets/products/salad.svg"), SVG),
        "products/padthai.svg" => (include_bytes!("../../assets/products/padthai.svg"), SVG),
        "products/cake.svg" => (include_bytes!("../../assets/products/cake.svg"), SVG),
        _ => return None,
    })
}

async fn asset(Path(file): Path<String>) -> Response {
    match asset_bytes(&file) {
        Some((bytes, kind)) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// Security headers on every answer, and no state change from another site.
async fn guard(request: Request, next: Next) -> Response {
    let unsafe_method = !request.method().is_safe();
    if unsafe_method && cross_site(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "cross-site request refused: orders are placed from this app's own pages",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Whether the browser says the request comes from another origin.
fn cross_site(h: &HeaderMap) -> bool {
    if h.get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s == "cross-site" || s == "same-site")
    {
        return true;
    }
    match (
        h.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        h.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => {
            origin == "null" || origin.split_once("://").map(|(_, rest)| rest) != Some(host)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids() {
        assert!(valid_order_id(&new_order_id()));
        assert!(valid_order_id("order-abc_1-2"));
        assert!(!valid_order_id("order-"));
        assert!(!valid_order_id("other-1"));
        assert!(!valid_order_id("order-<script>"));
        assert!(!valid_order_id(&format!("order-{}", "a".repeat(65))));
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3000"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3001"),
        );
        assert!(cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3000"),
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
    }

    #[test]
    fn page_tokens_round_trip() {
        let t = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(from_hex(&to_hex(&t)), Some(t));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é1"), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            render::esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(render::seg("order-a b/c"), "order-a%20b%2Fc");
    }
}
