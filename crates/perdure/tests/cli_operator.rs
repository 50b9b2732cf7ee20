//! `perdure operator ...`, error cases (message on one stderr line, exit code) and shell
//! completions, against a real `perdure server start-dev`.

mod common;

use common::{kv_value, perdure_cmd, server, table_rows};

#[test]
fn namespaces_and_search_attributes() {
    let s = server();
    let out = s
        .perdure(&[
            "operator",
            "namespace",
            "create",
            "shop",
            "--description",
            "the shop",
            "--retention",
            "48h",
        ])
        .ok();
    assert_eq!(out, "Namespace shop successfully registered.\n");
    // -n names the namespace too.
    let out = s
        .perdure(&["operator", "namespace", "create", "-n", "other"])
        .ok();
    assert_eq!(out, "Namespace other successfully registered.\n");

    let out = s.perdure(&["operator", "namespace", "list"]).ok();
    let rows = table_rows(&out);
    assert_eq!(rows[0], ["Name", "State", "Retention", "Description"]);
    assert!(
        rows.contains(&vec![
            "shop".into(),
            "Registered".into(),
            "48h".into(),
            "the shop".into()
        ]),
        "{out}"
    );
    assert!(rows.iter().any(|r| r[0] == "default"), "{out}");
    let list = s
        .perdure(&["operator", "namespace", "list", "-o", "json"])
        .json();
    let shop = list
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespaceInfo"]["name"] == "shop")
        .expect("shop listed");
    assert_eq!(shop["config"]["workflowExecutionRetentionTtl"], "172800s");
    assert_eq!(shop["namespaceInfo"]["state"], "NAMESPACE_STATE_REGISTERED");

    let out = s
        .perdure(&[
            "operator",
            "namespace",
            "update",
            "shop",
            "--description",
            "the new shop",
            "--data",
            "team=payments",
        ])
        .ok();
    assert_eq!(out, "Namespace shop update succeeded.\n");
    let out = s
        .perdure(&["operator", "namespace", "describe", "-n", "shop"])
        .ok();
    assert_eq!(kv_value(&out, "Name").as_deref(), Some("shop"));
    assert_eq!(
        kv_value(&out, "Description").as_deref(),
        Some("the new shop")
    );
    assert_eq!(kv_value(&out, "Data").as_deref(), Some("team=payments"));
    assert_eq!(kv_value(&out, "Retention").as_deref(), Some("48h"));
    let d = s
        .perdure(&["operator", "namespace", "describe", "shop", "-o", "json"])
        .json();
    assert_eq!(d["namespaceInfo"]["description"], "the new shop");
    assert_eq!(d["namespaceInfo"]["data"]["team"], "payments");

    // Search attributes, per namespace.
    let out = s
        .perdure(&[
            "operator",
            "search-attribute",
            "create",
            "-n",
            "shop",
            "--name",
            "CustomerId",
            "--type",
            "Keyword",
            "--name",
            "Amount",
            "--type",
            "Double",
        ])
        .ok();
    assert_eq!(out, "Search attributes have been added\n");
    let out = s
        .perdure(&["operator", "search-attribute", "list", "-n", "shop"])
        .ok();
    let rows = table_rows(&out);
    assert_eq!(rows[0], ["Name", "Type", "Kind"]);
    assert!(
        rows.contains(&vec![
            "CustomerId".into(),
            "Keyword".into(),
            "custom".into()
        ]),
        "{out}"
    );
    assert!(
        rows.contains(&vec!["Amount".into(), "Double".into(), "custom".into()]),
        "{out}"
    );
    assert!(
        rows.contains(&vec![
            "WorkflowType".into(),
            "Keyword".into(),
            "system".into()
        ]),
        "{out}"
    );
    let v = s
        .perdure(&[
            "operator",
            "search-attribute",
            "list",
            "-n",
            "shop",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        v["customAttributes"]["CustomerId"],
        "INDEXED_VALUE_TYPE_KEYWORD"
    );
    // The new attribute is usable in a visibility query of that namespace.
    let r = s.perdure(&["workflow", "list", "-n", "shop", "-q", "CustomerId = 'c1'"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
}

/// Asserts a one-line error on stderr, exit code 1 and nothing on stdout.
fn assert_error(r: common::Run, message: &str) {
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stderr, format!("Error: {message}\n"), "{r:#?}");
    assert_eq!(r.stdout, "", "{r:#?}");
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    // Nothing listening: the default address, then an explicit one via TEMPORAL_ADDRESS.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("127.0.0.1:{port}");
    let r = perdure_cmd()
        .args(["workflow", "list", "--address", &dead])
        .output()
        .unwrap()
        .into();
    assert_error(
        r,
        &format!("cannot reach the server at {dead} — is `perdure server start-dev` running?"),
    );
    let r = perdure_cmd()
        .env("TEMPORAL_ADDRESS", &dead)
        .args(["operator", "namespace", "list"])
        .output()
        .unwrap()
        .into();
    assert_error(
        r,
        &format!("cannot reach the server at {dead} — is `perdure server start-dev` running?"),
    );

    let s = server();
    // PERDURE_ADDRESS wins over TEMPORAL_ADDRESS.
    let r: common::Run = perdure_cmd()
        .env("PERDURE_ADDRESS", &s.address)
        .env("TEMPORAL_ADDRESS", &dead)
        .args(["workflow", "count"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.stdout, "Total: 0\n", "{r:#?}");

    assert_error(
        s.perdure(&["workflow", "describe", "-w", "nope"]),
        "workflow \"nope\" not found in namespace \"default\"",
    );
    assert_error(
        s.perdure(&["workflow", "signal", "-w", "nope", "--name", "x"]),
        "workflow \"nope\" not found in namespace \"default\"",
    );
    assert_error(
        s.perdure(&[
            "workflow",
            "show",
            "-w",
            "nope",
            "-r",
            "01a21242-0000-7000-8000-000000000000",
        ]),
        "workflow \"nope\" (run 01a21242-0000-7000-8000-000000000000) not found in namespace \"default\"",
    );
    assert_error(
        s.perdure(&["workflow", "result", "-w", "nope"]),
        "workflow \"nope\" not found in namespace \"default\"",
    );
    assert_error(
        s.perdure(&["workflow", "list", "-n", "nowhere"]),
        "namespace \"nowhere\" not found",
    );
    assert_error(
        s.perdure(&["workflow", "describe", "-w", "x", "--namespace", "nowhere"]),
        "namespace \"nowhere\" not found",
    );
    let r: common::Run = perdure_cmd()
        .env("PERDURE_ADDRESS", &s.address)
        .env("PERDURE_NAMESPACE", "nowhere")
        .args(["workflow", "count"])
        .output()
        .unwrap()
        .into();
    assert_error(r, "namespace \"nowhere\" not found");
    assert_error(
        s.perdure(&["operator", "namespace", "describe", "nowhere"]),
        "namespace \"nowhere\" not found",
    );
    assert_error(
        s.perdure(&[
            "workflow",
            "start",
            "-t",
            "q",
            "--type",
            "t",
            "-i",
            "1",
            "-i",
            "{\"a\": 1,}",
        ]),
        "--input #2 is not valid JSON: trailing comma at line 1 column 9",
    );
    assert_error(
        s.perdure(&[
            "workflow", "signal", "-w", "x", "--name", "s", "-i", "[1,\n 2", "-i", "3",
        ]),
        "--input #1 is not valid JSON: EOF while parsing a list at line 2 column 2",
    );
    let dir = std::env::temp_dir().join(format!("perdure-cli-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.json");
    std::fs::write(&file, "{\n  \"a\": 1 2\n}\n").unwrap();
    assert_error(
        s.perdure(&[
            "workflow",
            "start",
            "-t",
            "q",
            "--type",
            "t",
            "--input-file",
            file.to_str().unwrap(),
        ]),
        &format!(
            "{} is not valid JSON: expected `,` or `}}` at line 2 column 10",
            file.display()
        ),
    );
    assert_error(
        s.perdure(&["operator", "namespace", "create", "default"]),
        "Namespace default already exists.",
    );
    // Usage errors are clap's: exit code 2.
    let r = s.perdure(&["workflow", "describe"]);
    assert_eq!(r.code, Some(2), "{r:#?}");
    assert!(r.stderr.contains("--workflow-id"), "{r:#?}");
}

#[test]
fn shell_completions() {
    for (shell, marker) in [
        ("bash", "_perdure()"),
        ("zsh", "#compdef perdure"),
        ("fish", "complete -c perdure"),
    ] {
        let out = perdure_cmd().args(["completion", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("workflow"), "{shell}");
        assert!(text.contains("task-queue"), "{shell}");
    }
    let out = perdure_cmd().args(["completion", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
