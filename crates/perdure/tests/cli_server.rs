//! `perdure server start-dev` options: limits set with Temporal's dynamic config keys take effect,
//! and a bad setting stops the server with a one-line error.

mod common;

use std::process::Command;

use common::{perdure_bin, server_with};

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
