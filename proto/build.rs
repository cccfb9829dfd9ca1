//! Compiles `tongban/v1/*.proto` with protox (pure Rust, no `protoc` binary) and writes
//! the file descriptor set next to the generated code for gRPC server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "tongban/v1/records.proto",
        "tongban/v1/exchange.proto",
        "tongban/v1/unified.proto",
        "tongban/v1/stewardship.proto",
        "tongban/v1/operations.proto",
        "tongban/v1/quality.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("tongban_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
