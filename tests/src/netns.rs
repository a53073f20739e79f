//! A network namespace owned by a test.

use std::{
    fs::{self, File},
    os::{
        fd::{AsFd, OwnedFd},
        unix::{fs::MetadataExt, process::CommandExt},
    },
    path::{Path, PathBuf},
    process::{self, Command},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    thread,
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use nix::{
    sched::{CloneFlags, setns},
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::{Child, exec, wait_until};

/// How long processes in a dropped namespace get to die after SIGKILL.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A uniquely named network namespace, deleted on drop together with every process in it.
///
/// Where tests' agents pin their data planes: see [`Netns::pin_dir`].
const PIN_ROOT: &str = "/sys/fs/bpf/xlb-test";

/// Commands enter it by `setns` on its `/run/netns` handle rather than `ip netns exec`, which
/// would also remount `/sys` and so hide the bpffs where xlb pins its maps. Each namespace
/// has a scratch directory for the logs of what runs in it and for per-test files (configs,
/// run directories); it is removed with the namespace unless the test is failing.
pub struct Netns {
    name: String,
    handle: Arc<OwnedFd>,
    inode: u64,
    dir: PathBuf,
}

impl Netns {
    /// Creates `xlb-<tag>-<pid>-<n>`, unique across tests and concurrent test processes.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        ensure!(
            !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "namespace tag {tag:?}: use letters, digits and '-'"
        );
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("xlb-{tag}-{}-{n}", process::id());
        let mut add = Command::new("ip");
        add.args(["netns", "add", &name]);
        exec::output(add)?;
        // Once `ns` exists its `Drop` deletes the namespace; before that, this function must.
        let ns = match Self::open(&name) {
            Ok((handle, inode, dir)) => Self {
                name,
                handle: Arc::new(handle),
                inode,
                dir,
            },
            Err(err) => {
                let _ = delete(&name);
                return Err(err);
            }
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn open(name: &str) -> anyhow::Result<(OwnedFd, u64, PathBuf)> {
        let path = Path::new("/run/netns").join(name);
        let file = File::open(&path).with_context(|| format!("open {}", path.display()))?;
        let inode = file.metadata()?.ino();
        let dir = std::env::temp_dir().join(name);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok((file.into(), inode, dir))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Scratch directory for this namespace's logs and files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the agents in this namespace pin their data planes, on the BPF file system
    /// (which all namespaces share): removed with the namespace, so that what an agent
    /// killed by a test leaves pinned does not outlive the test.
    pub fn pin_dir(&self) -> PathBuf {
        Path::new(PIN_ROOT).join(&self.name)
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        let handle = Arc::clone(&self.handle);
        // SAFETY: runs between fork and exec; setns is a single async-signal-safe syscall and
        // the closure neither allocates nor takes locks.
        unsafe {
            command.pre_exec(move || {
                setns(handle.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
            });
        }
        command
    }

    /// Starts `command` (usually from [`Netns::command`]) as a guarded child whose output goes
    /// to this namespace's scratch directory.
    pub fn spawn(&self, label: &str, command: Command) -> anyhow::Result<Child> {
        Child::spawn(label, command, &self.dir)
    }

    /// Runs `f` on a thread that has entered this namespace, so sockets it creates belong here
    /// (and stay here when returned to the caller). A panic in `f` propagates.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        thread::scope(|scope| {
            let thread = scope.spawn(|| {
                setns(self.handle.as_fd(), CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("enter namespace {}", self.name))?;
                Ok(f())
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs a short-lived tool (`ip`, `ethtool`, `bpftool`, `nft`...) in this namespace to
    /// completion, within a deadline, and returns its stdout; failing is an error with its
    /// stderr.
    pub fn output(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut command = self.command(program);
        command.args(args);
        exec::output(command)
    }

    /// Runs `ip ARGS...` in this namespace and returns what it printed.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        self.output("ip", args)
    }

    /// Sets a sysctl in this namespace, e.g. `("net.ipv4.conf.eth0.forwarding", "1")`.
    ///
    /// Keys are dotted, so a name with a dot in it (a VLAN such as `eth0.10`) cannot be set
    /// here.
    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        self.run(|| fs::write(&path, value))?
            .with_context(|| format!("sysctl {key}={value} in {}", self.name))
    }

    /// PIDs of the processes whose network namespace is this one.
    pub fn pids(&self) -> anyhow::Result<Vec<u32>> {
        let wanted = format!("net:[{}]", self.inode);
        let mut pids = Vec::new();
        for entry in fs::read_dir("/proc").context("list /proc")? {
            let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // Processes come and go (and zombies have no namespace): unreadable means not ours.
            let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/net")) else {
                continue;
            };
            if pid != process::id() && ns.as_os_str() == wanted.as_str() {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    fn kill_everything(&self) -> anyhow::Result<()> {
        for pid in self.pids()? {
            // Gone already is fine; anything else is left for the wait below to report.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        wait_until(
            &format!("the processes in {} to die", self.name),
            TEARDOWN_TIMEOUT,
            Duration::from_millis(10),
            || self.pids().map(|left| left.is_empty()).unwrap_or(false),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let killed = self.kill_everything();
        let deleted = delete(&self.name);
        let unpinned = match fs::remove_dir_all(self.pin_dir()) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow::Error::from(err).context("removing its pins"))
            }
            _ => Ok(()),
        };
        for err in [killed.err(), deleted.err(), unpinned.err()]
            .into_iter()
            .flatten()
        {
            eprintln!("cleaning up namespace {}: {err:#}", self.name);
        }
        if thread::panicking() {
            eprintln!("kept {} for the failing test", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn delete(name: &str) -> anyhow::Result<()> {
    let mut del = Command::new("ip");
    del.args(["netns", "delete", name]);
    exec::output(del)?;
    if Path::new("/run/netns").join(name).exists() {
        bail!("{name} still exists after `ip netns delete`");
    }
    Ok(())
}
