//! Generates only the gRPC *server* traits for the Temporal services from the descriptor set that
//! `temporalio-protos` publishes; every message type stays in that crate (extern paths).
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")
        .map_err(|_| "temporalio-protos did not publish its descriptor set")?;
    println!("cargo:rerun-if-changed={path}");
    let bytes = std::fs::read(&path)?;
    let mut fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    // Keep only the files that declare the services we serve; the messages they use are extern.
    let wanted = [
        "temporal/api/workflowservice/v1/service.proto",
        "temporal/api/operatorservice/v1/service.proto",
    ];
    fds.file.retain(|f| wanted.contains(&f.name()));
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .extern_path(".google", "::temporalio_protos::google")
        .extern_path(".grpc", "::temporalio_protos::grpc")
        .extern_path(".coresdk", "::temporalio_protos::coresdk")
        .extern_path(".nexus", "::temporalio_protos::nexus")
        .compile_fds(fds)?;
    Ok(())
}
