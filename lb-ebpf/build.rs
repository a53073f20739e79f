//! The object is linked by `bpf-linker`, which cargo does not know about: rebuild when it
//! changes, so an upgraded linker never leaves a stale object behind.
fn main() {
    match which::which("bpf-linker") {
        Ok(linker) => println!("cargo:rerun-if-changed={}", linker.display()),
        Err(err) => println!("cargo:warning=bpf-linker not found ({err}); run `cargo xtask setup`"),
    }
}
