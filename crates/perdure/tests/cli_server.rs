//! `perdure server start-dev` options: limits set with Temporal's dynamic config keys take effect,
//! a bad setting stops the server with a one-line error, and the web UI with the HTTP API is
//! served on `--ui-port` unless `--headless`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::{free_port, perdure_bin, server_with};

/// One HTTP/1.1 GET; the whole answer (status line, headers, body).
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn the_web_ui_and_the_http_api_are_served_on_the_ui_port() {
    let port = free_port();
    let _s = server_with(&["--ui-port", &port.to_string()]);
    let root = http_get(port, "/").unwrap();
    assert!(root.starts_with("HTTP/1.1 303"), "{root}");
    assert!(
        root.to_lowercase()
            .contains("location: /namespaces/default/workflows"),
        "{root}"
    );
    let page = http_get(port, "/namespaces/default/workflows").unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(r#"data-page="workflows""#), "{page}");
    assert!(
        page.to_lowercase()
            .contains("content-security-policy: default-src 'self'"),
        "{page}"
    );
    let api = http_get(port, "/api/v1/namespaces/default").unwrap();
    assert!(api.starts_with("HTTP/1.1 200"), "{api}");
    assert!(api.contains(r#""name":"default""#), "{api}");
    let missing = http_get(port, "/api/v1/namespaces/nope").unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains(r#""code":5"#), "{missing}");
}

#[test]
fn headless_serves_no_web_ui() {
    let port = free_port();
    let s = server_with(&["--headless", "--ui-port", &port.to_string()]);
    assert_eq!(s.perdure(&["workflow", "list"]).code, Some(0));
    assert!(
        http_get(port, "/").is_err(),
        "nothing listens on the UI port"
    );
}

#[test]
fn dynamic_config_values_set_the_limits() {
    let s = server_with(&["--dynamic-config-value", "limit.blobSize.error=64"]);
    let big = format!("\"{}\"", "x".repeat(100));
    let r = s.perdure(&[
        "workflow", "start", "-t", "q", "--type", "t", "-w", "big", "-i", &big,
    ]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("Blob data size exceeds limit."), "{r:?}");
    let small = s.perdure(&[
        "workflow", "start", "-t", "q", "--type", "t", "-w", "small", "-i", "1",
    ]);
    assert_eq!(small.code, Some(0), "{small:?}");
}

#[test]
fn a_bad_dynamic_config_value_is_refused_at_start() {
    let out = Command::new(perdure_bin())
        .args(["server", "start-dev", "--in-memory", "--port", "0"])
        .args(["--dynamic-config-value", "limit.nope=1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown dynamic config key \"limit.nope\""),
        "{err}"
    );
}
