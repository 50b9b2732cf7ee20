//! Copies the protobuf descriptor set that `temporalio-protos` publishes (its `links` metadata) into
//! `OUT_DIR`, so that `history_json` can map Temporal messages to and from proto3 JSON.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")
        .map_err(|_| "temporalio-protos did not publish its descriptor set")?;
    println!("cargo:rerun-if-changed={path}");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("temporal_descriptors.bin");
    std::fs::copy(&path, out)?;
    Ok(())
}
