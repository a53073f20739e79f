//! Finding the workspace's binaries (`xlb`, `xlb-http-real`) from a test or from xtask.
//!
//! Cargo tells integration tests where their own package's binaries are, but not library
//! code and not other packages' binaries; all of them land in the same profile directory,
//! which is where the running executable is (`target/debug`) or just above it
//! (`target/debug/deps` for tests).

use std::{env, path::PathBuf};

use anyhow::{Context, bail};

/// Overrides where binaries are looked for, e.g. to test an installed `xlb`.
const BIN_DIR_VAR: &str = "XLB_BIN_DIR";

/// The path of the workspace binary `name`, built in the same profile as this executable.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match env::var_os(BIN_DIR_VAR) {
        Some(dir) => vec![PathBuf::from(dir).join(name)],
        None => {
            let exe = env::current_exe().context("locate the running executable")?;
            exe.ancestors()
                .skip(1)
                .take(2)
                .map(|dir| dir.join(name))
                .collect()
        }
    };
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "binary {name} not found (looked at {candidates:?}); build it with `cargo build \
         --bins` (`cargo xtask test` does) or point {BIN_DIR_VAR} at it"
    )
}
