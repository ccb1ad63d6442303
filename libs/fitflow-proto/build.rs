//! Compiles every `.proto` under `proto/` with protox (pure Rust, so a fresh
//! machine needs no `protoc`) and writes the descriptor set for reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): checkouts that share a target
    // directory share this compiled build script, but each runs it for itself.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = proto_files(&proto_root)?;
    println!("cargo:rerun-if-changed=../../proto");
    // Cargo gives this crate the same identity in every checkout of the repo,
    // so with a shared target directory the file watch above can be satisfied
    // by another checkout's run. deploy/dev/{up,test} export a digest of the
    // contracts' content, which reruns this script whenever it differs.
    println!("cargo:rerun-if-env-changed=FITFLOW_CONTRACTS_DIGEST");

    let descriptor_set = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("fitflow_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptor_set),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptor_set)?;
    Ok(())
}

fn proto_files(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(proto_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}
