//! Debian 12's stock kernel for the VM, unpacked from its `.deb` into a cache directory and
//! never installed: the host keeps booting its own kernel.
//!
//! Layout of [`CACHE`]: one directory per kernel package (`linux-image-6.1.0-N-amd64/`)
//! holding the package's files (`boot/`, `lib/modules/RELEASE/` with a fresh `depmod`),
//! the uncompressed `vmlinux` and, written last, `release`; `current` names the package
//! directory the VM boots. A package directory is filled under a temporary name and renamed
//! when complete, so an interrupted setup leaves nothing that looks ready.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail, ensure};

use crate::cmd;

/// Outside the git tree, shared by every worktree and clone on the machine.
pub const CACHE: &str = "/var/cache/xlb/kernel-vm";
/// The metapackage that depends on the current Debian 12 kernel.
const METAPACKAGE: &str = "linux-image-amd64";
/// Written last into a package directory: the kernel release (`uname -r` in the guest).
const RELEASE_FILE: &str = "release";
const CURRENT_FILE: &str = "current";
/// The start of an xz stream, which is how Debian compresses the kernel inside `vmlinuz`.
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";

/// An unpacked kernel, ready to boot.
pub struct Kernel {
    /// `uname -r` of the guest, e.g. `6.1.0-41-amd64`.
    pub release: String,
    /// The uncompressed ELF image, which QEMU boots directly through its PVH entry point,
    /// skipping the real-mode setup and the decompression that are slow under emulation.
    pub vmlinux: PathBuf,
    /// `lib/modules` of the package, holding `RELEASE/`: the guest's `/lib/modules`.
    pub modules: PathBuf,
}

impl Kernel {
    /// The kernel `cargo xtask setup` prepared last.
    pub fn prepared() -> anyhow::Result<Self> {
        let current = Path::new(CACHE).join(CURRENT_FILE);
        let package = fs::read_to_string(&current).with_context(|| {
            format!(
                "no kernel for the VM ({} unreadable): run `cargo xtask setup`",
                current.display()
            )
        })?;
        Self::at(&Path::new(CACHE).join(package.trim()))?.with_context(|| {
            format!(
                "{CACHE}/{} is incomplete: run `cargo xtask setup`",
                package.trim()
            )
        })
    }

    /// The kernel unpacked in `dir`, if it is complete.
    fn at(dir: &Path) -> anyhow::Result<Option<Self>> {
        let release = match fs::read_to_string(dir.join(RELEASE_FILE)) {
            Ok(release) => release.trim().to_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).context(format!("read {}/{RELEASE_FILE}", dir.display())),
        };
        Ok(Some(Self {
            release,
            vmlinux: dir.join("vmlinux"),
            modules: dir.join("lib/modules"),
        }))
    }
}

/// `cargo xtask setup`'s step: makes the current Debian 12 kernel ready to boot, unless it
/// already is (then it only asks apt which kernel is current).
pub fn prepare() -> anyhow::Result<()> {
    let package = current_package()?;
    let dir = Path::new(CACHE).join(&package);
    if let Some(kernel) = Kernel::at(&dir)? {
        println!(
            "setup: VM kernel {} ({package}): present in {CACHE}",
            kernel.release
        );
    } else {
        println!("setup: VM kernel: fetching {package} into {CACHE} (unpacked, not installed)");
        unpack(&package, &dir)?;
    }
    // Through a rename, so a VM starting meanwhile reads the old name or the new one.
    let current = Path::new(CACHE).join(CURRENT_FILE);
    if fs::read_to_string(&current).ok().as_deref().map(str::trim) != Some(package.as_str()) {
        let partial = beside(&current, "partial");
        fs::write(&partial, format!("{package}\n"))
            .with_context(|| format!("write {}", partial.display()))?;
        fs::rename(&partial, &current).with_context(|| format!("write {}", current.display()))?;
    }
    Ok(())
}

/// The package `linux-image-amd64` depends on now, e.g. `linux-image-6.1.0-41-amd64`.
fn current_package() -> anyhow::Result<String> {
    let depends = || {
        let output = cmd::probe(Command::new("apt-cache").args(["depends", METAPACKAGE]))?;
        kernel_dependency(&output)
    };
    if let Some(package) = depends() {
        return Ok(package);
    }
    // A fresh machine may have no package lists yet.
    cmd::run(Command::new("apt-get").arg("update"))?;
    depends().with_context(|| format!("apt knows no kernel that {METAPACKAGE} depends on"))
}

/// The `linux-image-*` dependency in `apt-cache depends` output.
fn kernel_dependency(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let package = line.trim().strip_prefix("Depends: ")?;
        package
            .starts_with("linux-image-")
            .then(|| package.to_owned())
    })
}

/// Downloads `package`, unpacks it, indexes its modules and extracts `vmlinux`, into `dir`.
fn unpack(package: &str, dir: &Path) -> anyhow::Result<()> {
    let partial = beside(dir, "partial");
    fs::create_dir_all(&partial).with_context(|| format!("create {}", partial.display()))?;

    cmd::run(
        Command::new("apt-get")
            .args(["download", package])
            .current_dir(&partial),
    )?;
    let deb = only_entry(&partial, |name| name.ends_with(".deb"))
        .context("find the downloaded package")?;
    let tree = partial.join("tree");
    cmd::run(
        Command::new("dpkg-deb")
            .arg("--extract")
            .arg(&deb)
            .arg(&tree),
    )?;
    fs::remove_file(&deb).with_context(|| format!("remove {}", deb.display()))?;

    let release_dir = only_entry(&tree.join("lib/modules"), |_| true)?;
    let release = release_dir
        .file_name()
        .and_then(|name| name.to_str())
        .context("kernel release is not UTF-8")?
        .to_owned();
    // The package ships no module index: dpkg's postinst runs depmod on installation.
    cmd::run(
        Command::new("depmod")
            .arg("--basedir")
            .arg(&tree)
            .arg(&release),
    )?;
    println!("setup: VM kernel: extracting vmlinux from vmlinuz-{release}");
    extract_vmlinux(
        &tree.join(format!("boot/vmlinuz-{release}")),
        &tree.join("vmlinux"),
    )?;
    fs::write(tree.join(RELEASE_FILE), format!("{release}\n")).context("write release")?;

    // The tree becomes the package directory; the partial directory only held the download.
    match fs::rename(&tree, dir) {
        Ok(()) => {}
        // Another setup finished the same kernel first.
        Err(_) if Kernel::at(dir)?.is_some() => {}
        Err(err) => return Err(err).context(format!("rename to {}", dir.display())),
    }
    fs::remove_dir_all(&partial).with_context(|| format!("remove {}", partial.display()))?;
    println!("setup: VM kernel {release}: ready in {}", dir.display());
    Ok(())
}

/// `path.WHAT-PID`: where this process prepares what becomes `path` by a rename.
fn beside(path: &Path, what: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{what}-{}", std::process::id()));
    PathBuf::from(name)
}

/// The one entry of `dir` whose name satisfies `wanted`.
fn only_entry(dir: &Path, wanted: impl Fn(&str) -> bool) -> anyhow::Result<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(&wanted) {
            found.push(entry.path());
        }
    }
    match <[PathBuf; 1]>::try_from(found) {
        Ok([path]) => Ok(path),
        Err(found) => bail!("expected one entry in {}, found {found:?}", dir.display()),
    }
}

/// Writes the ELF kernel that `vmlinuz` (a bzImage) carries as an xz stream.
fn extract_vmlinux(vmlinuz: &Path, vmlinux: &Path) -> anyhow::Result<()> {
    let image = fs::read(vmlinuz).with_context(|| format!("read {}", vmlinuz.display()))?;
    let start = image
        .windows(XZ_MAGIC.len())
        .position(|window| window == XZ_MAGIC)
        .with_context(|| format!("no xz stream in {}", vmlinuz.display()))?;
    let out = fs::File::create(vmlinux).with_context(|| format!("create {}", vmlinux.display()))?;
    // The stream is followed by the rest of the bzImage, which --single-stream ignores.
    let mut xz = Command::new("xz")
        .args(["--decompress", "--stdout", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(out)
        .spawn()
        .context("start xz")?;
    let mut stdin = xz.stdin.take().context("xz's stdin was not piped")?;
    match stdin.write_all(&image[start..]) {
        // xz stops reading at the end of the stream.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("feed vmlinuz to xz")?,
    }
    drop(stdin);
    let status = xz.wait().context("wait for xz")?;
    ensure!(
        status.success(),
        "xz failed on {} ({status})",
        vmlinuz.display()
    );
    let mut magic = [0; 4];
    std::io::Read::read_exact(&mut fs::File::open(vmlinux)?, &mut magic)
        .with_context(|| format!("read {}", vmlinux.display()))?;
    ensure!(
        magic == *b"\x7fELF",
        "{} did not decompress to an ELF image",
        vmlinuz.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_kernel_the_metapackage_depends_on() {
        let output = "linux-image-amd64\n  Depends: linux-image-6.1.0-41-amd64\n";
        assert_eq!(
            kernel_dependency(output).as_deref(),
            Some("linux-image-6.1.0-41-amd64")
        );
        assert_eq!(
            kernel_dependency("linux-image-amd64\n  Recommends: foo\n"),
            None
        );
    }
}
