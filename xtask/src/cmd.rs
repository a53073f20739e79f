//! Running the tools xtask drives, visibly: every command that changes something is echoed
//! on stderr (stdout is left for results, such as the object paths of `build-ebpf`).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
};

use anyhow::{Context, bail};

/// The workspace root, where every cargo command runs.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
}

/// The cargo that runs xtask, so nested builds use the same toolchain.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// Echoes `command`, runs it with the terminal, and fails unless it succeeds.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("+ {}", shown(command));
    let status = command
        .status()
        .with_context(|| format!("cannot start {}", shown(command)))?;
    if !status.success() {
        bail!("{} failed ({status})", shown(command));
    }
    Ok(())
}

/// Echoes `command` and runs it, handing each line of its stdout to `on_line` as it comes
/// (stderr stays on the terminal); returns how it exited.
pub fn run_with_stdout(
    command: &mut Command,
    mut on_line: impl FnMut(&str),
) -> anyhow::Result<ExitStatus> {
    eprintln!("+ {}", shown(command));
    let mut process = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", shown(command)))?;
    let stdout = process.stdout.take().context("stdout was not piped")?;
    for line in BufReader::new(stdout).lines() {
        on_line(&line.context("read output")?);
    }
    process.wait().context("wait for it to exit")
}

/// Runs a probe quietly and returns its stdout, or `None` if it cannot run or fails.
pub fn probe(command: &mut Command) -> Option<String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `VAR=value program args...`, as one would type it.
pub fn shown(command: &Command) -> String {
    let envs = command.get_envs().filter_map(|(key, value)| {
        value.map(|value| format!("{}={}", key.to_string_lossy(), value.to_string_lossy()))
    });
    let words = std::iter::once(command.get_program()).chain(command.get_args());
    envs.chain(words.map(|word| word.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}
