//! `cargo xtask vm -- CMD`: runs a command under Debian 12's stock kernel, in a throwaway
//! QEMU VM, as if on the host.
//!
//! This machine's kernel is not the kernel users run; the VM boots the one Debian 12 ships
//! (6.1, with IPVS, SCTP, ipip, veth and bridge as modules) so that the verifier, the data
//! plane and the kernel's own IPVS can be tried on it. QEMU emulates the CPU (TCG: KVM here
//! takes only PVM guests), which costs about 5 s per boot and a factor of 10 to 30 in speed.
//!
//! The guest's root is the host's, read-only under a tmpfs overlay, so host-built binaries
//! and installed tools run in it unchanged and nothing the guest writes reaches the host,
//! except in the workspace, which is shared read-write at its own path. The guest's init
//! (`xtask/vm/init.sh`) reads its instructions from a control directory shared for the
//! boot, runs the command with the host's working directory, `PATH` and `HOME`, and writes
//! how it ended back there. The command's stdout and stderr travel on two serial ports, the
//! guest kernel's console on a third, into a file.

mod initramfs;
pub mod kernel;

use std::{
    env,
    ffi::{OsStr, OsString},
    fs,
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::{Command, ExitCode, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use xlb_testbed::TIME_SCALE_VAR;

use crate::cmd;
use kernel::Kernel;

/// What the guest gets in `XLB_TEST_TIME_SCALE`, which stretches the test bed's timeouts
/// (tests/src/wait.rs), unless the host sets the variable itself.
const TIME_SCALE: &str = "20";
/// `cargo xtask vm`'s exit code when the guest could not be set up to run the command.
const SETUP_FAILED: u8 = 125;
/// Its exit code when the VM died or ran out of time before the command finished.
const VM_DIED: u8 = 124;
/// Lines of the guest's console shown when something went wrong.
const CONSOLE_TAIL: usize = 40;
const POLL: Duration = Duration::from_millis(50);
const DEFAULT_MEMORY_MIB: u32 = 1024;
const DEFAULT_TIMEOUT_S: u64 = 600;

/// The machine to boot.
#[derive(Clone, Debug, clap::Args)]
pub struct Machine {
    /// Guest memory in MiB (also bounds what the guest can write: its root is in memory).
    #[arg(long, default_value_t = DEFAULT_MEMORY_MIB)]
    pub memory: u32,
    /// Virtual CPUs (each an emulating host thread); the default is the host's CPU count.
    #[arg(long)]
    pub cpus: Option<usize>,
    /// Seconds after which the VM is killed, whatever it is doing.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_S)]
    pub timeout: u64,
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            memory: DEFAULT_MEMORY_MIB,
            cpus: None,
            timeout: DEFAULT_TIMEOUT_S,
        }
    }
}

/// How a command in the VM ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The command ran and exited with this code (128 + N when killed by signal N).
    Exited(i32),
    /// The guest could not prepare to run it, for this reason.
    SetupFailed(String),
    /// The VM stopped, or was stopped at its timeout, before the command ended.
    Died,
}

/// What the guest's init left in `status`.
fn outcome(status: Option<&str>) -> Outcome {
    let Some(status) = status.map(str::trim) else {
        return Outcome::Died;
    };
    if let Some(reason) = status.strip_prefix("setup-failed:") {
        return Outcome::SetupFailed(reason.trim().to_owned());
    }
    match status.strip_prefix("exit ").map(str::parse) {
        Some(Ok(code)) => Outcome::Exited(code),
        // "running", or nothing yet.
        _ => Outcome::Died,
    }
}

/// `cargo xtask vm`: the command's exit code, or [`SETUP_FAILED`] or [`VM_DIED`].
pub fn main(machine: &Machine, command: &[OsString]) -> anyhow::Result<ExitCode> {
    Ok(match machine.run(command, &[], None)? {
        Outcome::Exited(code) => ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX)),
        Outcome::SetupFailed(_) => ExitCode::from(SETUP_FAILED),
        Outcome::Died => ExitCode::from(VM_DIED),
    })
}

impl Machine {
    /// Boots, runs `command` with `env` added to the host's `PATH` and `HOME`, and powers
    /// off. The guest's stdout goes to `on_stdout`, a line at a time, or else to this
    /// process's stdout as it comes; its stderr to this process's stderr. When the command
    /// did not get to exit, the reason and the end of the guest's console follow on stderr.
    pub fn run(
        &self,
        command: &[OsString],
        env: &[(&str, &str)],
        on_stdout: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> anyhow::Result<Outcome> {
        let kernel = Kernel::prepared()?;
        let ctl = ControlDir::create()?;
        let started = Instant::now();
        let cwd = env::current_dir().context("the working directory")?;
        ctl.write(
            "config",
            &config(cmd::workspace_root(), &kernel.modules, &cwd),
        )?;
        ctl.write("command", &command_script(command, env, &cwd)?)?;
        let initramfs = ctl.path.join("initramfs.cpio");
        fs::write(&initramfs, initramfs::build(&kernel)?)
            .with_context(|| format!("write {}", initramfs.display()))?;

        let mut qemu = self.qemu(&kernel, &initramfs, &ctl.path);
        let mut process = qemu
            .spawn()
            .with_context(|| format!("cannot start {}", cmd::shown(&qemu)))?;
        let stdout = process
            .stdout
            .take()
            .context("QEMU's stdout was not piped")?;
        let stderr = process
            .stderr
            .take()
            .context("QEMU's stderr was not piped")?;
        let ended = thread::scope(|scope| {
            scope.spawn(move || match on_stdout {
                Some(on_line) => {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        on_line(&line);
                    }
                }
                None => forward(stdout, io::stdout()),
            });
            scope.spawn(move || forward(stderr, io::stderr()));
            self.wait(&mut process)
        })?;

        let outcome = outcome(fs::read_to_string(ctl.path.join("status")).ok().as_deref());
        let after = format!("after {:.1} s", started.elapsed().as_secs_f64());
        match (&outcome, ended) {
            (Outcome::Exited(0), _) => {}
            (Outcome::Exited(code), _) => {
                eprintln!("xtask vm: the command exited with {code} {after}");
            }
            (Outcome::SetupFailed(reason), _) => {
                eprintln!("xtask vm: the guest's set-up failed {after}: {reason}");
            }
            (Outcome::Died, None) => eprintln!(
                "xtask vm: the VM ran past its timeout ({} s) before the command ended",
                self.timeout
            ),
            (Outcome::Died, Some(qemu)) => {
                eprintln!("xtask vm: the VM stopped ({qemu}) {after}, before the command ended")
            }
        }
        if matches!(outcome, Outcome::SetupFailed(_) | Outcome::Died) {
            let console = fs::read(ctl.path.join("console.log")).unwrap_or_default();
            let console = String::from_utf8_lossy(&console);
            let lines: Vec<&str> = console.lines().collect();
            eprintln!("xtask vm: the guest's console, last {CONSOLE_TAIL} lines:");
            for line in &lines[lines.len().saturating_sub(CONSOLE_TAIL)..] {
                eprintln!("  | {line}");
            }
        }
        Ok(outcome)
    }

    /// QEMU's exit status, or `None` if it was killed at the timeout.
    fn wait(&self, process: &mut std::process::Child) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + Duration::from_secs(self.timeout);
        loop {
            if let Some(status) = process.try_wait().context("wait for QEMU")? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            if now >= deadline {
                process.kill().context("kill QEMU")?;
                process.wait().context("reap QEMU")?;
                return Ok(None);
            }
            thread::sleep(POLL.min(deadline - now));
        }
    }

    fn qemu(&self, kernel: &Kernel, initramfs: &Path, ctl: &Path) -> Command {
        let cpus = self.cpus.unwrap_or_else(|| {
            thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args([
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
            "-display",
            "none",
        ])
        .args(["-accel", "tcg,thread=multi", "-cpu", "max"])
        .arg("-m")
        .arg(self.memory.to_string())
        .arg("-smp")
        .arg(cpus.to_string())
        .arg("-kernel")
        .arg(&kernel.vmlinux)
        .arg("-initrd")
        .arg(initramfs)
        // panic=-1 with -no-reboot: a guest panic ends QEMU at once.
        .args([
            "-append",
            "console=ttyS0 loglevel=4 panic=-1 mitigations=off",
        ]);
        // ttyS0, ttyS1, ttyS2 in this order. QEMU opens /dev/stdout and /dev/stderr anew,
        // which are pipes to this process: a file that this process's stdout was redirected
        // to would be opened at its start, and the two writers would overwrite each other.
        let serial = [
            ("console", ctl.join("console.log")),
            ("stdout", PathBuf::from("/dev/stdout")),
            ("stderr", PathBuf::from("/dev/stderr")),
        ];
        for (id, path) in serial {
            let mut chardev = OsString::from(format!("file,id={id},path="));
            chardev.push(path);
            qemu.arg("-chardev")
                .arg(chardev)
                .arg("-serial")
                .arg(format!("chardev:{id}"));
        }
        let shares = [
            ("hostroot", Path::new("/"), ",readonly=on"),
            ("share", cmd::workspace_root(), ""),
            ("ctl", ctl, ""),
        ];
        for (tag, path, options) in shares {
            let mut fsdev = OsString::from(format!(
                "local,id={tag},security_model=none,multidevs=remap{options},path="
            ));
            fsdev.push(path);
            qemu.arg("-fsdev")
                .arg(fsdev)
                .arg("-device")
                .arg(format!("virtio-9p-pci,fsdev={tag},mount_tag={tag}"));
        }
        // QEMU's own errors come on its stderr with the guest's.
        qemu.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        qemu
    }
}

/// Copies what the guest writes to one of this process's outputs, as it comes.
fn forward(mut from: impl Read, mut to: impl Write) {
    let mut buffer = [0; 4096];
    while let Ok(read @ 1..) = from.read(&mut buffer) {
        if to
            .write_all(&buffer[..read])
            .and_then(|()| to.flush())
            .is_err()
        {
            return;
        }
    }
}

/// The init's `config`: where to mount the workspace, where the modules are on the host,
/// where the command starts.
fn config(share: &Path, modules: &Path, cwd: &Path) -> Vec<u8> {
    let mut config = Vec::new();
    for (name, value) in [("share", share), ("modules", modules), ("cwd", cwd)] {
        config.extend_from_slice(name.as_bytes());
        config.push(b'=');
        config.extend_from_slice(&quoted(value.as_os_str()));
        config.push(b'\n');
    }
    config
}

/// The script the guest's `/bin/sh` runs: the host's environment, then `command` in `cwd`.
fn command_script(
    command: &[OsString],
    env: &[(&str, &str)],
    cwd: &Path,
) -> anyhow::Result<Vec<u8>> {
    if command.is_empty() {
        bail!("no command to run in the VM");
    }
    let mut vars: Vec<(OsString, OsString)> = Vec::new();
    for name in ["PATH", "HOME"] {
        if let Some(value) = env::var_os(name) {
            vars.push((name.into(), value));
        }
    }
    let scale = env::var_os(TIME_SCALE_VAR).unwrap_or_else(|| TIME_SCALE.into());
    vars.push((TIME_SCALE_VAR.into(), scale));
    vars.extend(env.iter().map(|&(name, value)| (name.into(), value.into())));

    let mut script = Vec::new();
    for (name, value) in vars {
        script.extend_from_slice(b"export ");
        script.extend_from_slice(name.as_bytes());
        script.push(b'=');
        script.extend_from_slice(&quoted(&value));
        script.push(b'\n');
    }
    // The init has checked that the guest has this directory.
    script.extend_from_slice(b"cd ");
    script.extend_from_slice(&quoted(cwd.as_os_str()));
    script.extend_from_slice(b"\nexec");
    for word in command {
        script.push(b' ');
        script.extend_from_slice(&quoted(word));
    }
    script.push(b'\n');
    Ok(script)
}

/// `word` as one shell word: in single quotes, each `'` written as `'\''`.
fn quoted(word: &OsStr) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &byte in word.as_bytes() {
        if byte == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(byte);
        }
    }
    out.push(b'\'');
    out
}

/// A directory shared with one guest, removed afterwards.
struct ControlDir {
    path: PathBuf,
}

impl ControlDir {
    fn create() -> anyhow::Result<Self> {
        // Unique per process and boot: tests may boot several VMs one after another.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let path = env::temp_dir().join(format!("xlb-vm-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self { path })
    }

    fn write(&self, name: &str, contents: &[u8]) -> anyhow::Result<()> {
        let path = self.path.join(name);
        fs::write(&path, contents).with_context(|| format!("write {}", path.display()))
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_the_init_leaves() {
        assert_eq!(outcome(Some("exit 0\n")), Outcome::Exited(0));
        assert_eq!(outcome(Some("exit 130\n")), Outcome::Exited(130));
        assert_eq!(
            outcome(Some("setup-failed: mount -t bpf bpf /newroot/sys/fs/bpf\n")),
            Outcome::SetupFailed("mount -t bpf bpf /newroot/sys/fs/bpf".into())
        );
        assert_eq!(outcome(Some("running\n")), Outcome::Died);
        assert_eq!(outcome(None), Outcome::Died);
    }

    #[test]
    fn quotes_every_word_for_the_shell() {
        assert_eq!(quoted(OsStr::new("plain")), b"'plain'");
        assert_eq!(quoted(OsStr::new("it's $HOME")), b"'it'\\''s $HOME'");
    }

    #[test]
    fn the_script_sets_the_environment_then_runs_the_command() {
        let command = [OsString::from("echo"), OsString::from("a b")];
        let env = [("XLB_EXPECT_KERNEL", "6.1")];
        let script = command_script(&command, &env, Path::new("/w/it's")).unwrap();
        let script = String::from_utf8(script).unwrap();
        let lines: Vec<&str> = script.lines().collect();
        assert!(
            lines.contains(&"export XLB_EXPECT_KERNEL='6.1'"),
            "{script}"
        );
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with("export XLB_TEST_TIME_SCALE='")),
            "{script}"
        );
        assert!(lines.contains(&"cd '/w/it'\\''s'"), "{script}");
        assert_eq!(lines.last(), Some(&"exec 'echo' 'a b'"));
        assert!(command_script(&[], &[], Path::new("/")).is_err());
    }
}
