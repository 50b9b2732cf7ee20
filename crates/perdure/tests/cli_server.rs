//! `perdure server start-dev` options: limits set with Temporal's dynamic config keys take effect,
//! a bad setting stops the server with a one-line error, and the web UI with the HTTP API is
//! served on `--ui-port` unless `--headless`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, free_port, perdure_bin, server_with};

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
    for (setting, message) in [
        (
            "limit.maxIDLength=-1",
            "limit.maxIDLength needs a non-negative whole number",
        ),
        (
            "system.enableEagerWorkflowStart=maybe",
            "system.enableEagerWorkflowStart is a switch",
        ),
        ("limit.maxIDLength", "expected KEY=VALUE"),
    ] {
        let out = Command::new(perdure_bin())
            .args(["server", "start-dev", "--in-memory", "--port", "0"])
            .args(["--dynamic-config-value", setting])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{setting}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{setting}: {err}");
    }
}

/// The official SDKs' test harnesses start `temporal server start-dev` with Temporal's feature
/// switches and keys Perdure has no use for: the same command line starts Perdure, with warnings.
#[test]
fn switches_and_unknown_keys_are_accepted_with_a_warning() {
    let log = std::env::temp_dir().join(format!("perdure-cli-switches-{}.log", std::process::id()));
    let port = free_port();
    let child = Command::new(perdure_bin())
        .args(["server", "start-dev", "--in-memory", "--headless"])
        .args(["--log-level", "warn", "--port", &port.to_string()])
        .args([
            "--dynamic-config-value",
            "system.enableEagerWorkflowStart=true",
        ])
        .args([
            "--dynamic-config-value",
            "frontend.activityAPIsEnabled=false",
        ])
        .args(["--dynamic-config-value", "system.somethingNew=42"])
        .args([
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=50",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let address = format!("127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let r = Command::new(perdure_bin())
            .args(["workflow", "list", "--address", &address])
            .output()
            .unwrap();
        if r.status.success() {
            break;
        }
        assert!(Instant::now() < end, "the server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(proc);
    let err = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        err.contains("system.somethingNew=42: Perdure does not know this key; ignored"),
        "{err}"
    );
    assert!(
        err.contains("frontend.activityAPIsEnabled=false: Perdure cannot turn this feature off"),
        "{err}"
    );
    assert!(!err.contains("enableEagerWorkflowStart"), "{err}");
}
