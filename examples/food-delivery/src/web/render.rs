//! HTML for both apps: whole pages and the fragments that live updates replace. Every value that
//! comes from outside (order ids, failure messages, query answers) goes through [`esc`].

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::book::{OrderView, ServerHealth, Snapshot};
use crate::order::{self, Product, products, state};

use super::Site;

/// Which app a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Menu,
    Driver,
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one URL path segment.
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A whole page.
pub fn page(
    site: &Site,
    app: App,
    title: &str,
    live: &str,
    order: Option<&str>,
    body: &str,
) -> String {
    let (brand, nav) = match app {
        App::Menu => (
            "Perdure Eats",
            format!(
                r##"<a href="/">Menu</a><a href="/#orders-section">Your orders</a><a href="{}" class="out">Driver portal</a>"##,
                esc(&site.driver_url)
            ),
        ),
        App::Driver => (
            "Perdure Eats · Driver",
            format!(
                r##"<a href="/">Deliveries</a><a href="{}" class="out">Menu</a>"##,
                esc(&site.menu_url)
            ),
        ),
    };
    let order_attr = order
        .map(|id| format!(r#" data-order="{}""#, esc(id)))
        .unwrap_or_default();
    let ui = site
        .ui_url
        .as_ref()
        .map(|u| {
            format!(
                r#" · <a href="{}" class="out">Perdure web UI</a>"#,
                esc(&format!(
                    "{u}/namespaces/{}/workflows",
                    seg(&site.namespace)
                ))
            )
        })
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/assets/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/style.css">
<script src="/assets/app.js" defer></script>
</head>
<body class="{app_class}" data-live="{live}"{order_attr}>
<header class="top">
  <a class="brand" href="/"><img src="/assets/logo.svg" alt="" width="32" height="32"><span>{brand}</span></a>
  <nav>{nav}</nav>
</header>
<div id="banner" class="banners" aria-live="polite">{banner}</div>
<main>
{body}
</main>
<footer>
  Every order is a durable workflow on Perdure. Orders run on the {worker} worker (task queue <code>{tq}</code>) · server <code>{address}</code>{ui}
</footer>
</body>
</html>
"#,
        title = esc(title),
        app_class = match app {
            App::Menu => "menu-app",
            App::Driver => "driver-app",
        },
        live = esc(live),
        banner = banner(site, &site.book.snapshot()),
        worker = esc(&site.worker_label),
        tq = esc(&site.task_queue),
        address = esc(site.book.address()),
    )
}

/// The banners above every page: the server cannot be reached, no worker answers.
pub fn banner(site: &Site, snap: &Snapshot) -> String {
    let mut out = String::new();
    match &snap.server {
        ServerHealth::Up => {}
        ServerHealth::Connecting => out.push_str(&format!(
            r#"<p class="banner warn" id="server-connecting">Connecting to the Perdure server at <code>{}</code>…</p>"#,
            esc(site.book.address())
        )),
        ServerHealth::Down(why) => out.push_str(&format!(
            r#"<p class="banner error" id="server-down"><strong>Cannot reach the Perdure server at <code>{}</code>.</strong> {} The app keeps trying; orders already placed are safe on the server.</p>"#,
            esc(site.book.address()),
            esc(why)
        )),
    }
    let silent: Vec<&OrderView> = snap
        .orders
        .iter()
        .filter(|o| {
            o.open
                && o.problem
                    .as_deref()
                    .is_some_and(|p| p.starts_with("No worker"))
        })
        .collect();
    if !silent.is_empty() {
        let queues: std::collections::BTreeSet<&str> =
            silent.iter().map(|o| o.task_queue.as_str()).collect();
        let queues: Vec<String> = queues
            .into_iter()
            .map(|q| format!("<code>{}</code>", esc(q)))
            .collect();
        out.push_str(&format!(
            r#"<p class="banner error" id="no-worker"><strong>No worker is answering.</strong> The status query of {} open order{} timed out: is a worker polling task queue {}? Orders wait safely on the server and go on when a worker is back.</p>"#,
            silent.len(),
            if silent.len() == 1 { "" } else { "s" },
            queues.join(", ")
        ));
    }
    out
}

/// The menu: a card per product.
pub fn menu(site: &Site) -> String {
    let mut cards = String::new();
    for p in products() {
        let _ = write!(
            cards,
            r#"<article class="card" id="product-{id}">
  <img src="/assets/products/{img}" alt="{name}" width="400" height="300">
  <div class="card-body">
    <h3>{name}</h3>
    <p class="desc">{desc}</p>
    <div class="buy">
      <span class="price">{price}</span>
      <form method="post" action="/orders" data-js data-busy="Ordering…">
        <input type="hidden" name="product_id" value="{id}">
        <input type="hidden" name="order_id" value="{order_id}">
        <button type="submit" class="primary">Order</button>
      </form>
    </div>
    <p class="flash" hidden></p>
  </div>
</article>
"#,
            id = p.id,
            img = esc(&p.image),
            name = esc(&p.name),
            desc = esc(&p.description),
            price = esc(&p.price()),
            order_id = super::new_order_id(),
        );
    }
    let snap = site.book.snapshot();
    format!(
        r#"<section class="hero">
  <h1>Hungry? We deliver.</h1>
  <p>Order from the menu and follow your order live. The card is charged through a flaky payment service, a driver picks the order up and delivers it, and nothing is lost if any process dies on the way.</p>
</section>
<section class="menu" aria-label="Menu">
  <div class="grid">
{cards}  </div>
</section>
<section class="orders" id="orders-section">
  <h2>Your orders</h2>
  <div id="orders">{orders}</div>
</section>"#,
        orders = menu_orders(site, &snap),
    )
}

/// The menu's order history.
pub fn menu_orders(site: &Site, snap: &Snapshot) -> String {
    if snap.orders.is_empty() {
        return r#"<p class="empty">No orders yet. Pick something from the menu.</p>"#.into();
    }
    let mut out = order_rows(site, &snap.orders);
    // The live list holds the newest orders; every order is a page away.
    out.push_str(r#"<p class="more"><a href="/orders">All orders →</a></p>"#);
    out
}

/// Every order, a page at a time (`next`: the link to the older ones).
pub fn all_orders(site: &Site, orders: &[OrderView], next: Option<&str>, first: bool) -> String {
    let rows = if orders.is_empty() {
        r#"<p class="empty">No orders.</p>"#.to_string()
    } else {
        order_rows(site, orders)
    };
    let nav = match (first, next) {
        (true, Some(n)) => format!(
            r#"<p class="more"><a href="/orders?page={}">Older orders →</a></p>"#,
            esc(n)
        ),
        (false, Some(n)) => format!(
            r#"<p class="more"><a href="/orders">← Newest</a> · <a href="/orders?page={}">Older orders →</a></p>"#,
            esc(n)
        ),
        (false, None) => r#"<p class="more"><a href="/orders">← Newest</a></p>"#.to_string(),
        (true, None) => String::new(),
    };
    format!(
        r#"<p class="back"><a href="/">← Back to the menu</a></p>
<section class="orders"><h1>All orders</h1>{rows}{nav}</section>"#
    )
}

fn order_rows(site: &Site, orders: &[OrderView]) -> String {
    let mut out = String::from(r#"<ul class="order-list">"#);
    for o in orders {
        let _ = write!(
            out,
            r#"<li class="order" data-id="{id}">{thumb}<div class="what"><strong>{name}</strong> <span class="muted">{price}</span><div class="when">{times}</div>{note}</div>{badge}<div class="links"><a href="/orders/{id_url}">Track</a>{ui}</div></li>"#,
            id = esc(&o.id),
            id_url = seg(&o.id),
            thumb = thumb(o.product()),
            name = esc(&product_name(o)),
            price = esc(&o.product().map(Product::price).unwrap_or_default()),
            times = times(o),
            note = note(o),
            badge = badge(o.state()),
            ui = ui_link(site, o, "Workflow"),
        );
    }
    out.push_str("</ul>");
    out
}

/// The order page's live part.
pub fn order_detail(site: &Site, o: &OrderView) -> String {
    let st = o.state();
    let steps = [
        state::CHARGING,
        state::PAID,
        state::PICKED_UP,
        state::DELIVERED,
    ];
    let reached = steps.iter().position(|s| *s == st);
    let mut list = String::new();
    let ended_badly = matches!(
        st,
        state::REFUNDING | state::REFUNDED | state::PAYMENT_FAILED | state::FAILED
    ) || (!o.open && reached.is_none());
    for (i, s) in steps.iter().enumerate() {
        let class = match reached {
            Some(r) if i < r || (i == r && st == state::DELIVERED) => "done",
            Some(r) if i == r => "current",
            _ => "todo",
        };
        let label = if *s == state::CHARGING && reached.is_some_and(|r| r > 0) {
            "Card charged"
        } else {
            s
        };
        let _ = write!(list, r#"<li class="{class}">{}</li>"#, esc(label));
    }
    if ended_badly {
        let _ = write!(list, r#"<li class="failed">{}</li>"#, esc(st));
    }
    let delivered = o
        .status
        .as_ref()
        .and_then(|s| s.delivered_at.as_deref())
        .map(|t| {
            format!(
                r#"<dt>Delivered</dt><dd><time datetime="{0}">{0}</time></dd>"#,
                esc(t)
            )
        })
        .unwrap_or_default();
    let ui = site
        .ui_url
        .as_ref()
        .map(|_| {
            format!(
                r#"<dt>Workflow</dt><dd>{}</dd>"#,
                ui_link(site, o, "Open in the Perdure web UI")
            )
        })
        .unwrap_or_default();
    format!(
        r#"<div class="track-head">{badge}<p class="state-line" id="state">{state}</p></div>
<ol class="steps">{list}</ol>
{note}
<dl class="facts">
<dt>Order</dt><dd><code>{id}</code></dd>
<dt>Ordered</dt><dd>{placed}</dd>
{delivered}
<dt>Run</dt><dd>{exec} on task queue <code>{tq}</code></dd>
{ui}
</dl>"#,
        badge = badge(st),
        state = esc(&headline(o)),
        note = note(o),
        id = esc(&o.id),
        placed = o.placed_at.map(time).unwrap_or_default(),
        exec = esc(&o.execution_status),
        tq = esc(&o.task_queue),
    )
}

/// The order page.
pub fn order_page(site: &Site, o: &OrderView) -> String {
    let img = o
        .product()
        .map(|p| {
            format!(
                r#"<img class="hero-img" src="/assets/products/{}" alt="{}" width="400" height="300">"#,
                esc(&p.image),
                esc(&p.name)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<p class="back"><a href="/">← Back to the menu</a></p>
<section class="track">
  {img}
  <div class="track-body">
    <h1>{name}</h1>
    <p class="muted">{price}</p>
    <div id="detail">{detail}</div>
  </div>
</section>"#,
        name = esc(&product_name(o)),
        price = esc(&o.product().map(Product::price).unwrap_or_default()),
        detail = order_detail(site, o),
    )
}

/// The driver portal: open orders with their actions, then the ones finished lately.
pub fn driver(site: &Site) -> String {
    format!(
        r#"<section class="deliveries">
  <h1>Deliveries</h1>
  <p class="muted">Pick up paid orders and deliver them. The customer's page follows along live.</p>
  <div id="queue">{}</div>
</section>"#,
        driver_orders(site, &site.book.snapshot())
    )
}

/// The driver portal's live part.
pub fn driver_orders(site: &Site, snap: &Snapshot) -> String {
    let (open, closed): (Vec<&OrderView>, Vec<&OrderView>) =
        snap.orders.iter().partition(|o| o.open);
    let mut out = String::from("<h2>Open orders</h2>");
    if open.is_empty() {
        out.push_str(r#"<p class="empty">No open orders right now.</p>"#);
    } else {
        out.push_str(r#"<ul class="order-list driver">"#);
        for o in &open {
            let st = o.state();
            let can_pick = st == state::PAID;
            let can_deliver = st == state::PICKED_UP;
            let _ = write!(
                out,
                r#"<li class="order" data-id="{id}">{thumb}<div class="what"><strong>{name}</strong> <code class="oid">{short}</code><div class="when">{times}</div>{note}</div>{badge}<div class="actions">
<form method="post" action="/orders/{id_url}/pickup" data-js data-busy="Picking up…"><button type="submit" class="primary" name="pickup"{dp}>Pick up</button></form>
<form method="post" action="/orders/{id_url}/deliver" data-js data-busy="Delivering…"><button type="submit" class="primary" name="deliver"{dd}>Deliver</button></form>
{ui}</div><p class="flash" hidden></p></li>"#,
                id = esc(&o.id),
                id_url = seg(&o.id),
                thumb = thumb(o.product()),
                name = esc(&product_name(o)),
                short = esc(o.id.trim_start_matches("order-")),
                times = times(o),
                note = note(o),
                badge = badge(st),
                dp = if can_pick { "" } else { " disabled" },
                dd = if can_deliver { "" } else { " disabled" },
                ui = ui_link(site, o, "Workflow"),
            );
        }
        out.push_str("</ul>");
    }
    if !closed.is_empty() {
        out.push_str(r#"<h2>Finished</h2><ul class="order-list driver finished">"#);
        for o in closed.iter().take(12) {
            let _ = write!(
                out,
                r#"<li class="order" data-id="{id}">{thumb}<div class="what"><strong>{name}</strong> <code class="oid">{short}</code><div class="when">{times}</div></div>{badge}<div class="actions">{ui}</div></li>"#,
                id = esc(&o.id),
                thumb = thumb(o.product()),
                name = esc(&product_name(o)),
                short = esc(o.id.trim_start_matches("order-")),
                times = times(o),
                badge = badge(o.state()),
                ui = ui_link(site, o, "Workflow"),
            );
        }
        out.push_str("</ul>");
    }
    out
}

/// A plain page with a heading and a message (errors, not found).
pub fn message(title: &str, text: &str) -> String {
    format!(
        r#"<section class="message"><h1>{}</h1><p>{}</p><p><a href="/">← Back</a></p></section>"#,
        esc(title),
        esc(text)
    )
}

fn product_name(o: &OrderView) -> String {
    match (o.product(), o.product_id) {
        (Some(p), _) => p.name.clone(),
        (None, Some(id)) => format!("Product {id}"),
        (None, None) => "Order".into(),
    }
}

fn headline(o: &OrderView) -> String {
    match o.state() {
        state::CHARGING => "We are charging your card.".into(),
        state::PAID => "Paid. Waiting for a driver to pick your order up.".into(),
        state::PICKED_UP => "Your driver has your order and is on the way.".into(),
        state::DELIVERED => "Delivered. Enjoy your meal!".into(),
        state::REFUNDING => "Something went wrong; we are refunding your payment.".into(),
        state::REFUNDED => "Your payment has been refunded.".into(),
        state::PAYMENT_FAILED => "We could not charge your card. You have not been charged.".into(),
        "Unknown" => "Waiting for the order's status…".into(),
        other => format!("The order's workflow is {}.", other.to_lowercase()),
    }
}

fn thumb(p: Option<&Product>) -> String {
    match p {
        Some(p) => format!(
            r#"<img class="thumb" src="/assets/products/{}" alt="" width="64" height="48">"#,
            esc(&p.image)
        ),
        None => r#"<span class="thumb"></span>"#.into(),
    }
}

fn badge(st: &str) -> String {
    let class = match st {
        state::CHARGING => "charging",
        state::PAID => "paid",
        state::PICKED_UP => "picked",
        state::DELIVERED => "delivered",
        state::REFUNDING | state::REFUNDED => "refunded",
        state::PAYMENT_FAILED | state::FAILED | "Terminated" | "Timed out" | "Canceled" => "failed",
        _ => "unknown",
    };
    format!(
        r#"<span class="badge {class}" data-state="{0}">{0}</span>"#,
        esc(st)
    )
}

fn note(o: &OrderView) -> String {
    let mut out = String::new();
    if let Some(r) = &o.retrying {
        let _ = write!(out, r#"<p class="note retry">{}</p>"#, esc(r));
    }
    if let Some(p) = &o.problem {
        let _ = write!(out, r#"<p class="note problem">{}</p>"#, esc(p));
    }
    out
}

fn times(o: &OrderView) -> String {
    let mut out = String::new();
    if let Some(t) = o.placed_at {
        let _ = write!(out, "Ordered {}", time(t));
    }
    if let Some(d) = o.status.as_ref().and_then(|s| s.delivered_at.as_deref()) {
        let _ = write!(
            out,
            r#" · delivered <time datetime="{0}">{0}</time>"#,
            esc(d)
        );
    } else if let (false, Some(t)) = (o.open, o.closed_at) {
        let _ = write!(out, " · closed {}", time(t));
    }
    out
}

fn time(t: SystemTime) -> String {
    let iso = order::rfc3339(t);
    // `2026-11-26T19:32:41.123Z` → `19:32:41 UTC` until the page's script shows local time.
    let short = iso.get(11..19).unwrap_or(&iso);
    format!(
        r#"<time datetime="{}">{} UTC</time>"#,
        esc(&iso),
        esc(short)
    )
}

fn ui_link(site: &Site, o: &OrderView, label: &str) -> String {
    match &site.ui_url {
        Some(u) => format!(
            r#" <a class="out" href="{}" target="_blank" rel="noopener">{}</a>"#,
            esc(&format!(
                "{u}/namespaces/{}/workflows/{}/{}/history",
                seg(&site.namespace),
                seg(&o.id),
                seg(&o.run_id)
            )),
            esc(label)
        ),
        None => String::new(),
    }
}
