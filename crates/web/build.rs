//! Builds the descriptor set the HTTP API reads its routes and message shapes from: the Temporal
//! `.proto` files that the `temporalio-protos` crate ships, compiled with `protox`, **keeping the
//! `google.api.http` options** (the descriptor set that crate publishes drops extension options).
//! The crate's sources are found with `cargo metadata`, so the version is the one in Cargo.lock.

use std::path::PathBuf;
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Only the host's packages (all of them are downloaded by the time build scripts run).
    let target = std::env::var("TARGET")?;
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version=1",
            "--offline",
            "--filter-platform",
        ])
        .arg(&target)
        .arg("--manifest-path")
        .arg(&manifest)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let protos_manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "temporalio-protos")
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("temporalio-protos is not among the dependencies")?;
    let root = PathBuf::from(protos_manifest)
        .parent()
        .ok_or("no crate directory")?
        .join("protos");
    println!("cargo:rerun-if-changed={}", root.display());
    let includes = [
        root.join("api_upstream"),
        root.join("local"),
        root.join("grpc"),
        root.clone(),
    ];
    let files = [
        root.join("api_upstream/temporal/api/workflowservice/v1/service.proto"),
        root.join("api_upstream/temporal/api/operatorservice/v1/service.proto"),
        root.join("api_upstream/temporal/api/errordetails/v1/message.proto"),
        root.join("api_upstream/temporal/api/sdk/v1/workflow_metadata.proto"),
        root.join("google/rpc/status.proto"),
    ];
    let mut compiler = protox::Compiler::new(includes)?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(files)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("temporal_descriptors.bin");
    std::fs::write(out, compiler.encode_file_descriptor_set())?;
    Ok(())
}
