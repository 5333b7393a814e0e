//! Compiles `proto/trellis/events/v1/*.proto` with protox (pure Rust, no
//! `protoc`), generates the Rust types with prost-build, and writes the encoded
//! `FileDescriptorSet` (imports and comments included) next to them.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let package_dir = proto_root.join("trellis/events/v1");
    println!("cargo:rerun-if-changed={}", package_dir.display());

    let mut files: Vec<PathBuf> = fs::read_dir(&package_dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let relative: Vec<&Path> = files
        .iter()
        .map(|file| file.strip_prefix(&proto_root))
        .collect::<Result<_, _>>()?;

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(relative)?;
    let descriptor_set = compiler.file_descriptor_set();

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("trellis_events_v1.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    prost_build::Config::new()
        .out_dir(&out_dir)
        .compile_fds(descriptor_set)?;
    Ok(())
}
