//! The web UI's pages: each URL (the Temporal UI's shapes) is a small server-rendered shell that
//! names its page and parameters; `assets/app.js` fills it from the HTTP API. Every value from a
//! URL is escaped here; every value from the API is set as text by the script, never as HTML.

use axum::Router;
use axum::extract::Path;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::{HeaderValue, StatusCode, header};

const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const FAVICON: &str = include_str!("../assets/favicon.svg");

pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    use axum::routing::get;
    Router::new()
        .route(
            "/",
            get(|| async { Redirect::to("/namespaces/default/workflows") }),
        )
        .route(
            "/namespaces",
            get(|| async { shell("namespaces", "Namespaces", &[]) }),
        )
        .route(
            "/namespaces/{ns}",
            get(|Path(ns): Path<String>| async move {
                Redirect::to(&format!("/namespaces/{}/workflows", encode(&ns)))
            }),
        )
        .route(
            "/namespaces/{ns}/workflows",
            get(|Path(ns): Path<String>| async move {
                shell(
                    "workflows",
                    &format!("Workflows · {ns}"),
                    &[("namespace", &ns)],
                )
            }),
        )
        .route(
            "/namespaces/{ns}/workflows/{wid}",
            get(|Path((ns, wid)): Path<(String, String)>| async move {
                workflow(&ns, &wid, "", "history")
            }),
        )
        .route(
            "/namespaces/{ns}/workflows/{wid}/{rid}",
            get(
                |Path((ns, wid, rid)): Path<(String, String, String)>| async move {
                    Redirect::to(&format!(
                        "/namespaces/{}/workflows/{}/{}/history",
                        encode(&ns),
                        encode(&wid),
                        encode(&rid)
                    ))
                },
            ),
        )
        .route(
            "/namespaces/{ns}/workflows/{wid}/{rid}/{tab}",
            get(
                |Path((ns, wid, rid, tab)): Path<(String, String, String, String)>| async move {
                    workflow(&ns, &wid, &rid, &tab)
                },
            ),
        )
        .route(
            "/namespaces/{ns}/task-queues/{tq}",
            get(|Path((ns, tq)): Path<(String, String)>| async move {
                shell(
                    "task-queue",
                    &format!("Task queue {tq}"),
                    &[("namespace", &ns), ("task-queue", &tq)],
                )
            }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/favicon.ico",
            get(|| async { asset(FAVICON, "image/svg+xml") }),
        )
        .route(
            "/static/favicon.svg",
            get(|| async { asset(FAVICON, "image/svg+xml") }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
}

const TABS: &[&str] = &[
    "history",
    "timeline",
    "pending-activities",
    "queries",
    "json",
];

fn workflow(ns: &str, wid: &str, rid: &str, tab: &str) -> Response {
    if !TABS.contains(&tab) {
        return not_found(&format!("/namespaces/{ns}/workflows/{wid}/{rid}/{tab}"));
    }
    shell(
        "workflow",
        &format!("{wid} · {ns}"),
        &[
            ("namespace", ns),
            ("workflow-id", wid),
            ("run-id", rid),
            ("tab", tab),
        ],
    )
}

fn asset(text: &'static str, content_type: &'static str) -> Response {
    let mut r = text.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The page for an unknown path: a clear message with a way back, status 404.
pub(crate) fn not_found(path: &str) -> Response {
    let mut r = shell("not-found", "Not found", &[("path", path)]);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// A page shell: the header with the namespace switcher, an empty main area the script fills,
/// and the page's parameters as `data-` attributes on `<body>`.
fn shell(page: &str, title: &str, params: &[(&str, &str)]) -> Response {
    let mut attrs = format!(r#" data-page="{}""#, escape(page));
    for (k, v) in params {
        attrs.push_str(&format!(r#" data-{}="{}""#, k, escape(v)));
    }
    let ns = params
        .iter()
        .find(|(k, _)| *k == "namespace")
        .map_or("default", |(_, v)| v);
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Perdure</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
<script type="module" src="/static/app.js"></script>
</head>
<body{attrs}>
<header class="top">
  <a class="brand" href="/namespaces/{ns_url}/workflows">Perdure</a>
  <nav>
    <a href="/namespaces/{ns_url}/workflows">Workflows</a>
    <a href="/namespaces">Namespaces</a>
  </nav>
  <label class="ns-switch">Namespace <select id="ns-switch" data-current="{ns}"><option>{ns}</option></select></label>
</header>
<main id="main"><p class="muted">Loading…</p></main>
<div id="toast" role="status" aria-live="polite"></div>
</body>
</html>
"#,
        title = escape(title),
        ns = escape(ns),
        ns_url = escape(&encode(ns)),
    );
    Html(html).into_response()
}

/// HTML-escapes text for an element or a quoted attribute.
fn escape(s: &str) -> String {
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

/// Percent-encodes one path segment.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            escape(r#"<script>"x"&'y'"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }
}
