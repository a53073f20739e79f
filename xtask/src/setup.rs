//! `cargo xtask setup`: from a fresh Debian 12 to a machine that builds and tests xlb.
//!
//! Every step checks first and changes nothing that is already in place, so running it again
//! (as `cargo xtask test` does each time) is cheap and safe.

use std::{env, fs, process::Command};

use anyhow::{Context, bail, ensure};

use crate::{
    cmd::{self, probe},
    vm,
};

/// Debian packages, and why xlb needs each.
const PACKAGES: &[(&str, &str)] = &[
    ("build-essential", "C toolchain that rustc links with"),
    (
        "pkg-config",
        "finding system libraries when crates link them",
    ),
    (
        "llvm-22-dev",
        "LLVM 22, which bpf-linker links the XDP object with",
    ),
    (
        "iproute2",
        "namespaces, veth, bridges and addresses in tests",
    ),
    (
        "ethtool",
        "checksum offload off on test hosts, as on a real wire",
    ),
    ("iputils-ping", "reachability checks in tests"),
    ("keepalived", "the VRRP peer xlb is tested against"),
    ("nftables", "filtering in tests"),
    ("tcpdump", "looking at test traffic"),
    ("bpftool", "inspecting loaded programs and pinned maps"),
    ("curl", "HTTP from the command line"),
];

/// Debian packages of the VM that runs tests under Debian 12's kernel (`cargo xtask vm`),
/// installed without their recommendations (QEMU's would bring a desktop).
const VM_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "the emulator the VM runs in"),
    (
        "busybox-static",
        "the VM's init and its tools, before the host's root is mounted",
    ),
    (
        "kmod",
        "depmod for the VM kernel's modules, modprobe in the VM",
    ),
    ("xz-utils", "unpacking the VM kernel's image"),
];

const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPFFS: &str = "/sys/fs/bpf";

pub fn run() -> anyhow::Result<()> {
    debian_packages("Debian packages", PACKAGES, &[])?;
    ebpf_toolchain()?;
    bpf_linker()?;
    bpffs()?;
    debian_packages(
        "Debian packages of the VM",
        VM_PACKAGES,
        &["--no-install-recommends"],
    )?;
    vm::kernel::prepare()?;
    println!("setup: done");
    Ok(())
}

fn debian_packages(
    what: &str,
    packages: &[(&'static str, &str)],
    install_options: &[&str],
) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for &(package, why) in packages {
        if !is_installed(package)? {
            println!("setup: {package} is missing ({why})");
            missing.push(package);
        }
    }
    if missing.is_empty() {
        println!("setup: {what}: all {} present", packages.len());
        return Ok(());
    }
    require_root("install Debian packages")?;
    cmd::run(Command::new("apt-get").arg("update"))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "--yes"])
            .args(install_options)
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    for package in missing {
        ensure!(is_installed(package)?, "{package} still not installed");
    }
    Ok(())
}

fn is_installed(package: &str) -> anyhow::Result<bool> {
    let output = Command::new("dpkg-query")
        .args(["--show", "--showformat=${Status}", package])
        .output()
        .context("dpkg-query not found: setup supports Debian 12 (bookworm)")?;
    // Unknown packages make dpkg-query fail; known but removed ones say "deinstall ...".
    Ok(output.status.success() && output.stdout == b"install ok installed")
}

/// The toolchain `lb-userspace/build.rs` builds the XDP object with, and its std sources.
fn ebpf_toolchain() -> anyhow::Result<()> {
    let toolchain = env::var("XLB_EBPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into());
    // Without this, a recent rustup would install a missing toolchain as a side effect of
    // asking whether it is there.
    let has_toolchain = probe(
        Command::new("rustup")
            .args(["run", &toolchain, "rustc", "--version"])
            .env("RUSTUP_AUTO_INSTALL", "0"),
    )
    .is_some();
    if has_toolchain {
        println!("setup: Rust toolchain {toolchain}: present");
    } else {
        cmd::run(Command::new("rustup").args([
            "toolchain",
            "install",
            &toolchain,
            "--profile",
            "minimal",
        ]))?;
    }
    let components = probe(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        &toolchain,
    ]))
    .with_context(|| format!("cannot list the components of {toolchain}"))?;
    // Listed as `rust-src`, without a target suffix.
    if components.lines().any(|line| line.trim() == "rust-src") {
        println!("setup: rust-src for {toolchain}: present");
    } else {
        cmd::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            &toolchain,
        ]))?;
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    let version = || probe(Command::new("bpf-linker").arg("--version"));
    if let Some(version) = version() {
        println!("setup: {}: present", version.trim());
        return Ok(());
    }
    let path = env::var("PATH").unwrap_or_default();
    cmd::run(
        cmd::cargo()
            .args(["install", "bpf-linker"])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("PATH", format!("{LLVM_PREFIX}/bin:{path}"))
            .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX),
    )?;
    if version().is_none() {
        bail!("bpf-linker was installed but is not on PATH: add cargo's bin directory to PATH");
    }
    Ok(())
}

fn bpffs() -> anyhow::Result<()> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("read /proc/self/mounts")?;
    let mounted = mounts.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&BPFFS) && fields.get(2) == Some(&"bpf")
    });
    if mounted {
        println!("setup: bpffs at {BPFFS}: mounted");
        return Ok(());
    }
    require_root("mount bpffs")?;
    cmd::run(Command::new("mount").args(["-t", "bpf", "bpf", BPFFS]))
}

fn require_root(to: &str) -> anyhow::Result<()> {
    ensure!(xlb_testbed::is_root(), "setup must run as root to {to}");
    Ok(())
}
