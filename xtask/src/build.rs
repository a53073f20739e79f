//! Building `xlb` and, through `lb-userspace/build.rs`, the XDP object.
//!
//! The build script is the only place that knows how to build the object (a nested nightly
//! cargo for the BPF target); xtask just asks cargo where the results went.

use std::path::PathBuf;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::cmd;

/// What a build of lb-userspace produced.
pub struct Built {
    pub xlb: PathBuf,
    /// The XDP object files, left by the build script in its `OUT_DIR`.
    pub objects: Vec<PathBuf>,
}

/// `cargo xtask build-ebpf`: builds, then prints one object path per line.
pub fn print_objects() -> anyhow::Result<()> {
    for object in userspace()?.objects {
        println!("{}", object.display());
    }
    Ok(())
}

/// Builds lb-userspace and finds the `xlb` binary and the XDP objects.
pub fn userspace() -> anyhow::Result<Built> {
    let mut cargo = cmd::cargo();
    cargo
        .args(["build", "--package", "lb-userspace"])
        .arg("--message-format=json-render-diagnostics");
    let mut messages = Vec::new();
    let status = cmd::run_with_stdout(&mut cargo, |line| {
        // Anything not JSON is a build script's or tool's chatter; cargo shows errors itself.
        if let Ok(message) = serde_json::from_str::<Value>(line) {
            messages.push(message);
        }
    })?;
    if !status.success() {
        bail!("building lb-userspace failed ({status})");
    }
    find_outputs(&messages)
}

fn find_outputs(messages: &[Value]) -> anyhow::Result<Built> {
    let with_reason = |reason: &'static str| {
        messages
            .iter()
            .filter(move |message| message["reason"] == reason)
    };
    let xlb = with_reason("compiler-artifact")
        .find(|artifact| {
            artifact["target"]["name"] == "xlb"
                && artifact["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .context("cargo reported no `xlb` binary")?;
    let package = &xlb["package_id"];
    let out_dir = with_reason("build-script-executed")
        .find(|script| &script["package_id"] == package)
        .and_then(|script| script["out_dir"].as_str())
        .context("cargo reported no build-script run for lb-userspace")?;
    let executable = xlb["executable"]
        .as_str()
        .context("the `xlb` artifact has no executable path")?;
    let mut objects = Vec::new();
    for entry in std::fs::read_dir(out_dir).with_context(|| format!("list {out_dir}"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "o") {
            objects.push(path);
        }
    }
    objects.sort();
    ensure!(!objects.is_empty(), "no XDP object (*.o) in {out_dir}");
    Ok(Built {
        xlb: PathBuf::from(executable),
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_xlb_and_the_objects_of_its_build_script() {
        let out_dir = std::env::temp_dir().join(format!("xtask-out-{}", std::process::id()));
        std::fs::create_dir_all(&out_dir).unwrap();
        for file in ["lb-ebpf.o", "notes.txt"] {
            std::fs::write(out_dir.join(file), b"").unwrap();
        }
        let id = "path+file:///w/lb-userspace#0.1.0";
        let messages: Vec<Value> = [
            serde_json::json!({"reason": "build-script-executed", "package_id": "other",
                "out_dir": "/nonexistent"}),
            serde_json::json!({"reason": "build-script-executed", "package_id": id,
                "out_dir": out_dir}),
            serde_json::json!({"reason": "compiler-artifact", "package_id": id,
                "target": {"name": "xlb", "kind": ["lib"]}, "executable": null}),
            serde_json::json!({"reason": "compiler-artifact", "package_id": id,
                "target": {"name": "xlb", "kind": ["bin"]}, "executable": "/w/target/xlb"}),
        ]
        .into();

        let built = find_outputs(&messages).unwrap();
        std::fs::remove_dir_all(&out_dir).unwrap();
        assert_eq!(built.xlb, PathBuf::from("/w/target/xlb"));
        assert_eq!(built.objects, [out_dir.join("lb-ebpf.o")]);
    }

    #[test]
    fn a_build_without_xlb_is_an_error() {
        let messages = [serde_json::json!({"reason": "build-finished", "success": true})];
        assert!(find_outputs(&messages).is_err());
    }
}
