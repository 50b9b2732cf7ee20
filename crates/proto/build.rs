//! Generates only the gRPC *server* traits for the Temporal services from the descriptor set that
//! `temporalio-protos` publishes; every message type stays in that crate (extern paths). Every
//! trait method has a default answering UNIMPLEMENTED, so the server writes only the RPCs it
//! serves; each service's module also gets `<SERVICE>_METHODS`, the names of all its RPCs.
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
        .generate_default_stubs(true)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .extern_path(".google", "::temporalio_protos::google")
        .extern_path(".grpc", "::temporalio_protos::grpc")
        .extern_path(".coresdk", "::temporalio_protos::coresdk")
        .extern_path(".nexus", "::temporalio_protos::nexus")
        .compile_fds(fds.clone())?;
    append_method_lists(&fds)?;
    Ok(())
}

/// Appends to each generated file, e.g. `temporal.api.workflowservice.v1.rs`, a constant such as
/// `WORKFLOW_SERVICE_METHODS` naming every RPC of the service in declaration order.
fn append_method_lists(fds: &prost_types::FileDescriptorSet) -> std::io::Result<()> {
    use std::io::Write;
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for file in &fds.file {
        let path = out.join(format!("{}.rs", file.package()));
        let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
        for service in &file.service {
            let constant = upper_snake(service.name());
            let names: Vec<String> = service
                .method
                .iter()
                .map(|m| format!("    {:?},\n", m.name()))
                .collect();
            write!(
                f,
                "\n/// Every RPC of `{}.{}`, in declaration order.\npub const {constant}_METHODS: &[&str] = &[\n{}];\n",
                file.package(),
                service.name(),
                names.concat()
            )?;
        }
    }
    Ok(())
}

/// `WorkflowService` -> `WORKFLOW_SERVICE`.
fn upper_snake(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_uppercase());
    }
    s
}
