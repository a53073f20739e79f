//! Builds the XDP object from `lb-ebpf` and leaves it in `OUT_DIR` for `include_bytes!`.
//!
//! The eBPF crate needs the nightly toolchain (`-Z build-std=core`), the BPF target, BPF v3
//! (atomic fetch-add) and `bpf-linker`, none of which a normal cargo build of this crate
//! would pass, so this script runs a second cargo for it. `cargo xtask setup` installs
//! what it needs.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const TARGET: &str = "bpfel-unknown-none";
/// Binaries of `lb-ebpf`; each is one object file.
const OBJECTS: &[&str] = &["lb-ebpf", "baseline", "decap"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("lb-userspace lives in the workspace");
    for input in ["lb-ebpf", "lb-common"] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=XLB_EBPF_TOOLCHAIN");
    if let Ok(linker) = which_bpf_linker() {
        println!("cargo:rerun-if-changed={}", linker.display());
    }

    let toolchain = env::var("XLB_EBPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into());
    let target_dir = out_dir.join("ebpf-target");
    let flags = [
        "-Ctarget-cpu=v3",
        "-Cdebuginfo=2",
        "-Clink-arg=--btf",
        // bpf-linker asks LLVM to expand memcpy in order by default, and LLVM 22 then
        // leaves every memset to a call of a byte-by-byte loop: a stack frame of its own
        // on the verifier's count, and a loop on the packet path.
        "-Clink-arg=--disable-expand-memcpy-in-order",
    ]
    .join("\x1f");
    let mut cargo = Command::new("rustup");
    cargo
        .args([
            "run",
            &toolchain,
            "cargo",
            "build",
            "--package",
            "lb-ebpf",
            "--bins",
        ])
        .args(["--release", "--target", TARGET, "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(workspace)
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        // Those point at the outer (stable) build's compiler.
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTFLAGS");
    let output = cargo.output().unwrap_or_else(|err| {
        panic!("cannot run {cargo:?}: {err}; run `cargo xtask setup` to install the toolchain")
    });
    if !output.status.success() {
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            println!("cargo:warning={line}");
        }
        panic!(
            "building the XDP object failed ({}); see the warnings above",
            output.status
        );
    }
    for object in OBJECTS {
        let built = target_dir.join(TARGET).join("release").join(object);
        copy(&built, &out_dir.join(format!("{object}.o")));
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|err| panic!("copy {} to {}: {err}", from.display(), to.display()));
}

fn which_bpf_linker() -> Result<PathBuf, ()> {
    let path = env::var_os("PATH").ok_or(())?;
    env::split_paths(&path)
        .map(|dir| dir.join("bpf-linker"))
        .find(|p| p.is_file())
        .ok_or(())
}
